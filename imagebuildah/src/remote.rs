//! Remote build contexts, as buildah takes them: an `http(s)://` URL of a tar archive
//! (extracted: the context) or of a Containerfile (the context is then empty), and a git
//! repository (`git://…`, `…​.git`, `github.com/…`, with `#ref` and `#ref:subdir`), cloned
//! with `git`.
//!
//! ```text
//! context arg ─ http(s):// ─ copier::url::fetch ─ tar? ─ yes: extract to a temp dir
//!             │                                   └─ no: temp dir + the file as Containerfile
//!             └ git ─ git clone [--branch] ─ checkout ref ─ subdir
//! ```
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{io_at, BuildError, Result};

/// A downloaded or cloned context, removed when dropped.
#[derive(Debug)]
pub struct RemoteContext {
    /// The context directory.
    pub dir: PathBuf,
    /// The Containerfile when the URL named one.
    pub containerfile: Option<PathBuf>,
    _tmp: builder::scratch::ScratchDir,
}

/// Whether `s` names a git repository buildah would clone.
pub fn is_git(s: &str) -> bool {
    s.starts_with("git://")
        || s.starts_with("git@")
        || s.starts_with("github.com/")
        || ((s.starts_with("http://") || s.starts_with("https://"))
            && s.split('#').next().is_some_and(|u| u.ends_with(".git")))
}

/// Whether `s` is a remote context at all.
pub fn is_remote(s: &str) -> bool {
    is_git(s) || s.starts_with("http://") || s.starts_with("https://")
}

/// Fetch `url` into a temporary context.
pub fn fetch(url: &str) -> Result<RemoteContext> {
    // Locked while the build runs, and swept by a later hod if this one is killed.
    let tmp = builder::scratch::ScratchDir::new_in(&std::env::temp_dir(), "context")?;
    if is_git(url) {
        return clone(url, tmp);
    }
    let fetched = builder::copier::url::fetch(url, None, 3, std::time::Duration::from_secs(2))?;
    let name = builder::copier::url::file_name(url).unwrap_or_default();
    unpack(fetched.file, &name, tmp)
}

/// A context read from standard input (`hod bud -`): a tar archive (maybe compressed) of
/// the context, or a Containerfile with an empty context.
pub fn from_bytes(data: Vec<u8>) -> Result<RemoteContext> {
    let tmp = builder::scratch::ScratchDir::new_in(&std::env::temp_dir(), "context")?;
    let p = tmp.path().join("stdin");
    std::fs::write(&p, &data).map_err(io_at("writing", &p))?;
    let f = std::fs::File::open(&p).map_err(io_at("reading", &p))?;
    unpack(f, "Containerfile", tmp)
}

fn unpack(
    mut f: std::fs::File,
    name: &str,
    tmp: builder::scratch::ScratchDir,
) -> Result<RemoteContext> {
    let url = name;
    let dir = tmp.path().join("context");
    std::fs::create_dir(&dir).map_err(io_at("creating", &dir))?;
    let mut head = [0u8; 512];
    use std::io::{Read, Seek};
    let n = f.read(&mut head).map_err(io_at("reading", url))?;
    f.rewind().map_err(io_at("reading", url))?;
    let compressed =
        builder::archive::Compression::detect(&head[..n]) != builder::archive::Compression::None;
    let is_tar = compressed || (n >= 262 && &head[257..262] == b"ustar");
    if is_tar {
        // Entry by entry, confined to `dir` (never `tar::Archive::unpack`).
        let r = builder::archive::compress::decompress(Box::new(f))?;
        builder::copier::archive::extract_into(r, &dir, Path::new(url))?;
        return Ok(RemoteContext {
            dir,
            containerfile: None,
            _tmp: tmp,
        });
    }
    // A Containerfile: an empty context next to it.
    let cf = tmp.path().join(if name.is_empty() || name == "stdin" {
        "Containerfile"
    } else {
        name
    });
    let mut out = std::fs::File::create(&cf).map_err(io_at("creating", &cf))?;
    std::io::copy(&mut f, &mut out).map_err(io_at("writing", &cf))?;
    Ok(RemoteContext {
        dir,
        containerfile: Some(cf),
        _tmp: tmp,
    })
}

fn clone(spec: &str, tmp: builder::scratch::ScratchDir) -> Result<RemoteContext> {
    let (url, fragment) = match spec.split_once('#') {
        Some((u, f)) => (u.to_string(), f.to_string()),
        None => (spec.to_string(), String::new()),
    };
    let url = if url.starts_with("github.com/") {
        format!("https://{url}")
    } else {
        url
    };
    let (reference, subdir) = match fragment.split_once(':') {
        Some((r, s)) => (r.to_string(), s.to_string()),
        None => (fragment, String::new()),
    };
    if reference.starts_with('-') {
        return Err(BuildError::invalid(format!(
            "{spec}: invalid git reference {reference:?}"
        )));
    }
    let repo = tmp.path().join("repo");
    // git sees none of the host's configuration (no hooks, url rewrites or helpers from
    // /etc/gitconfig or ~/.gitconfig), and submodules cannot use file:// (git marks their
    // clones as not from the user, which `protocol.file.allow=user` refuses).
    let home = tmp.path().join("git-home");
    std::fs::create_dir(&home).map_err(io_at("creating", &home))?;
    let git = |args: &[&str], dir: Option<&Path>| -> Result<()> {
        let mut c = Command::new("git");
        c.args(["-c", "protocol.file.allow=user"])
            .args(args)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("HOME", &home)
            .env("XDG_CONFIG_HOME", &home)
            .env("GIT_TERMINAL_PROMPT", "0")
            .env_remove("GIT_DIR")
            .env_remove("GIT_WORK_TREE")
            .env_remove("GIT_CONFIG_PARAMETERS")
            .env_remove("GIT_SSH_COMMAND");
        if let Some(d) = dir {
            c.current_dir(d);
        }
        let out = c
            .output()
            .map_err(io_at("running git for the context", &url))?;
        if !out.status.success() {
            return Err(BuildError::invalid(format!(
                "cloning {url}: git {}: {}",
                args.first().copied().unwrap_or(""),
                // One line, as every error: git's lines joined.
                String::from_utf8_lossy(&out.stderr)
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .collect::<Vec<_>>()
                    .join("; ")
            )));
        }
        Ok(())
    };
    let repo_s = repo.display().to_string();
    git(
        &[
            "clone",
            "--recurse-submodules",
            "--quiet",
            "--",
            &url,
            &repo_s,
        ],
        None,
    )?;
    if !reference.is_empty() {
        git(&["checkout", "--quiet", &reference, "--"], Some(&repo))?;
    }
    let dir = if subdir.is_empty() {
        repo
    } else {
        // Inside the clone: a subdirectory that is, or goes through, a symlink out of
        // the repository is not one of its directories.
        let clean = builder::rootfs::clean_container_path(&format!("/{subdir}"));
        builder::rootfs::Root::open(&repo)
            .and_then(|r| r.real_path(&clean))
            .map_err(io_at(
                "resolving",
                repo.join(clean.strip_prefix("/").unwrap_or(&clean)),
            ))?
            .unwrap_or_else(|| tmp.path().join("no-such-subdirectory"))
    };
    if !dir.is_dir() {
        return Err(BuildError::invalid(format!(
            "{spec}: {subdir:?} is not a directory of the repository"
        )));
    }
    Ok(RemoteContext {
        dir,
        containerfile: None,
        _tmp: tmp,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds() {
        assert!(is_git("git://localhost:1/repo#main:sub"));
        assert!(is_git("https://example.com/x.git#v1"));
        assert!(is_git("github.com/containers/buildah"));
        assert!(!is_git("http://127.0.0.1:1/context.tar"));
        assert!(is_remote("http://127.0.0.1:1/context.tar"));
        assert!(!is_remote("./ctx"));
    }

    #[test]
    fn local_git_clone_with_ref_and_subdir() {
        let src = tempfile::tempdir().unwrap();
        let run = |args: &[&str]| {
            let s = Command::new("git")
                .args(args)
                .current_dir(src.path())
                .env("GIT_AUTHOR_NAME", "t")
                .env("GIT_AUTHOR_EMAIL", "t@t")
                .env("GIT_COMMITTER_NAME", "t")
                .env("GIT_COMMITTER_EMAIL", "t@t")
                .status()
                .expect("git on PATH");
            assert!(s.success(), "git {args:?}");
        };
        run(&["init", "-q", "-b", "main"]);
        std::fs::create_dir_all(src.path().join("nested/sub")).unwrap();
        std::fs::write(
            src.path().join("nested/sub/Containerfile"),
            "FROM scratch\n",
        )
        .unwrap();
        run(&["add", "."]);
        run(&["commit", "-q", "-m", "x"]);
        let spec = format!("file://{}#main:nested/sub", src.path().display());
        let tmp = builder::scratch::ScratchDir::new_in(&std::env::temp_dir(), "context").unwrap();
        let ctx = clone(&spec, tmp).unwrap();
        assert!(ctx.dir.join("Containerfile").is_file());
    }
}
