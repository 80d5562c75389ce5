//! `--ssh` and `RUN --mount=type=ssh`: ssh-agent sockets forwarded into a RUN.
//!
//! ```text
//!  --ssh default            ─> $SSH_AUTH_SOCK            ┐
//!  --ssh id=/path/agent.sock ─> that socket               ├─ Agents (one upstream socket per id)
//!  --ssh id=key1,key2        ─> ssh-agent -a <scratch> cat ┘   (host ssh-agent + ssh-add;
//!                                                              the agent lives as long as
//!                                                              `cat` reads hod's pipe)
//!  RUN --mount=type=ssh[,id,target,mode,uid,gid,required]
//!     ─> Forwarder: a socket of our own in the scratch directory (owner/mode as asked),
//!        each connection relayed to the upstream, bound read-only at the target
//!        (default /run/buildkit/ssh_agent.N), SSH_AUTH_SOCK set for that RUN only;
//!        the mount point is removed after the RUN, so nothing reaches a layer.
//! ```
//!
//! The relay means the user's own socket is never chowned or chmodded, and the agent sees
//! hod (not the RUN's user) as its peer, which it accepts.
use std::collections::BTreeMap;
use std::io;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::error::{io_at, BuildError, Result};

/// `--ssh default|ID[=SOCKET|KEY[,KEY…]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshSource {
    /// The ID a `RUN --mount=type=ssh,id=ID` names (`default` when not given there).
    pub id: String,
    /// An agent socket, or private key files; empty means `$SSH_AUTH_SOCK`.
    pub paths: Vec<PathBuf>,
}

impl SshSource {
    /// Parse one `--ssh` value.
    pub fn parse(s: &str) -> std::result::Result<SshSource, String> {
        let (id, rest) = match s.split_once('=') {
            Some((id, rest)) => (id, Some(rest)),
            None => (s, None),
        };
        if id.is_empty() {
            return Err(format!("invalid ssh {s:?}: no id"));
        }
        let paths = rest
            .map(|r| {
                r.split(',')
                    .filter(|p| !p.is_empty())
                    .map(PathBuf::from)
                    .collect()
            })
            .unwrap_or_default();
        Ok(SshSource {
            id: id.to_string(),
            paths,
        })
    }
}

/// The build's agents: one upstream socket per `--ssh` ID. An agent started for key files
/// runs `cat` on a pipe from hod as its command: dropping this (or hod dying, even by
/// SIGKILL) closes the pipe, `cat` exits, and the agent follows (ssh-agent checks its
/// command's process every 10 s), removing its socket.
#[derive(Debug, Default)]
pub struct Agents {
    upstream: BTreeMap<String, PathBuf>,
    children: Vec<Child>,
}

impl Agents {
    /// Resolve every `--ssh` source, starting an agent (under `scratch`) for key files.
    pub fn start(sources: &[SshSource], scratch: &Path) -> Result<Agents> {
        let mut a = Agents::default();
        for (n, s) in sources.iter().enumerate() {
            let paths = if s.paths.is_empty() {
                match std::env::var_os("SSH_AUTH_SOCK").filter(|v| !v.is_empty()) {
                    Some(v) => vec![PathBuf::from(v)],
                    None => {
                        return Err(BuildError::invalid(format!(
                        "invalid empty ssh agent socket for {:?}: make sure SSH_AUTH_SOCK is set",
                        s.id
                    )))
                    }
                }
            } else {
                s.paths.clone()
            };
            let socket = if let [one] = paths.as_slice() {
                use std::os::unix::fs::FileTypeExt;
                let md = std::fs::metadata(one).map_err(io_at("checking ssh source", one))?;
                md.file_type().is_socket().then(|| one.clone())
            } else {
                None
            };
            let socket = match socket {
                Some(p) => p,
                None => a.agent_with_keys(&paths, &scratch.join(format!("ssh-agent-{n}")))?,
            };
            a.upstream.insert(s.id.clone(), socket);
        }
        Ok(a)
    }

    /// The upstream socket of `id`.
    pub fn socket(&self, id: &str) -> Option<&Path> {
        self.upstream.get(id).map(PathBuf::as_path)
    }

    /// Start the host's `ssh-agent` on a private socket and add `keys` to it.
    fn agent_with_keys(&mut self, keys: &[PathBuf], dir: &Path) -> Result<PathBuf> {
        for k in keys {
            if !k.is_file() {
                return Err(BuildError::invalid(format!(
                    "ssh key {}: not a socket or a file",
                    k.display()
                )));
            }
        }
        std::fs::create_dir_all(dir).map_err(io_at("creating", dir))?;
        let sock = dir.join("agent.sock");
        let child = Command::new("ssh-agent")
            .arg("-a")
            .arg(&sock)
            .arg("cat")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(io_at("starting", Path::new("ssh-agent")))?;
        self.children.push(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while UnixStream::connect(&sock).is_err() {
            if Instant::now() > deadline {
                return Err(BuildError::invalid(format!(
                    "starting ssh-agent: no socket at {} after 10s",
                    sock.display()
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let out = Command::new("ssh-add")
            .args(keys)
            .env("SSH_AUTH_SOCK", &sock)
            .env("SSH_ASKPASS_REQUIRE", "never")
            .env_remove("DISPLAY")
            .stdin(Stdio::null())
            .output()
            .map_err(io_at("running", Path::new("ssh-add")))?;
        if !out.status.success() {
            let names: Vec<String> = keys.iter().map(|k| k.display().to_string()).collect();
            return Err(BuildError::invalid(format!(
                "adding ssh keys {}: {}",
                names.join(", "),
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(sock)
    }
}

impl Drop for Agents {
    fn drop(&mut self) {
        for c in &mut self.children {
            // EOF ends `cat`, and with it the agent.
            drop(c.stdin.take());
            let _ = c.wait();
        }
    }
}

/// A socket of our own relaying each connection to an upstream agent socket; stops (and
/// removes its socket) when dropped.
#[derive(Debug)]
pub struct Forwarder {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Forwarder {
    /// Listen at `path` (owned `uid:gid`, mode `mode`), relaying to `upstream`.
    pub fn start(upstream: &Path, path: &Path, owner: (u32, u32), mode: u32) -> Result<Forwarder> {
        let _ = std::fs::remove_file(path);
        let listener = UnixListener::bind(path).map_err(io_at("listening on", path))?;
        let me = (
            rustix::process::getuid().as_raw(),
            rustix::process::getgid().as_raw(),
        );
        // Already ours when the owner asked for is hod itself (no chown needed unprivileged).
        if owner != me {
            std::os::unix::fs::chown(path, Some(owner.0), Some(owner.1))
                .map_err(io_at("changing the owner of", path))?;
        }
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .map_err(io_at("changing the mode of", path))?;
        let stop = Arc::new(AtomicBool::new(false));
        let up = upstream.to_path_buf();
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if flag.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let up = up.clone();
                std::thread::spawn(move || {
                    if let Err(e) = relay(conn, &up) {
                        tracing::debug!("ssh agent relay to {}: {e}", up.display());
                    }
                });
            }
        });
        Ok(Forwarder {
            path: path.to_path_buf(),
            stop,
            thread: Some(thread),
        })
    }
}

fn relay(conn: UnixStream, upstream: &Path) -> io::Result<()> {
    let up = UnixStream::connect(upstream)?;
    let (mut c_r, mut u_w) = (conn.try_clone()?, up.try_clone()?);
    let t = std::thread::spawn(move || {
        let _ = io::copy(&mut c_r, &mut u_w);
        let _ = u_w.shutdown(std::net::Shutdown::Write);
    });
    let (mut u_r, mut c_w) = (up, conn);
    let _ = io::copy(&mut u_r, &mut c_w);
    let _ = c_w.shutdown(std::net::Shutdown::Write);
    let _ = t.join();
    Ok(())
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = UnixStream::connect(&self.path);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    /// Stages built in parallel share the build's agents.
    #[test]
    fn agents_are_shareable() {
        fn shareable<T: Send + Sync>() {}
        shareable::<Agents>();
    }

    #[test]
    fn parses() {
        assert_eq!(
            SshSource::parse("default").unwrap(),
            SshSource {
                id: "default".into(),
                paths: vec![]
            }
        );
        let s = SshSource::parse("git=/k1,/k2").unwrap();
        assert_eq!((s.id.as_str(), s.paths.len()), ("git", 2));
        assert!(SshSource::parse("=/x").is_err());
    }

    /// A key agent serves the key while `Agents` lives and goes away (socket removed) after.
    #[test]
    fn key_agent_lives_with_the_build() {
        let t = tempfile::tempdir().unwrap();
        let key = t.path().join("k");
        let st = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&key)
            .status()
            .unwrap();
        assert!(st.success());
        let a = Agents::start(
            &[SshSource {
                id: "k".into(),
                paths: vec![key.clone()],
            }],
            t.path(),
        )
        .unwrap();
        let sock = a.socket("k").unwrap().to_path_buf();
        let out = Command::new("ssh-add")
            .arg("-l")
            .env("SSH_AUTH_SOCK", &sock)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        drop(a);
        let deadline = Instant::now() + Duration::from_secs(20);
        while sock.exists() {
            assert!(Instant::now() < deadline, "the agent outlived the build");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    #[test]
    fn forwards_both_ways_and_stops() {
        let t = tempfile::tempdir().unwrap();
        let up_path = t.path().join("up.sock");
        let up = UnixListener::bind(&up_path).unwrap();
        let echo = std::thread::spawn(move || {
            let (mut s, _) = up.accept().unwrap();
            let mut b = [0u8; 5];
            s.read_exact(&mut b).unwrap();
            s.write_all(&b).unwrap();
        });
        let me = (
            rustix::process::getuid().as_raw(),
            rustix::process::getgid().as_raw(),
        );
        let fwd = t.path().join("fwd.sock");
        let f = Forwarder::start(&up_path, &fwd, me, 0o600).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&fwd).unwrap().permissions().mode() & 0o7777,
            0o600
        );
        let mut c = UnixStream::connect(&fwd).unwrap();
        c.write_all(b"hello").unwrap();
        let mut b = [0u8; 5];
        c.read_exact(&mut b).unwrap();
        assert_eq!(&b, b"hello");
        echo.join().unwrap();
        drop(f);
        assert!(!fwd.exists());
    }
}
