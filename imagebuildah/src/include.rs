//! `Containerfile.in` / `Dockerfile.in`: the C preprocessor pass buildah makes before parsing.
//!
//! ```text
//! file.in ──(cpp on PATH?)──yes──> cpp -E -iquote <context> -traditional -undef - \
//!    │                               $BUILDAH_CPPFLAGS --cpp-flag…   (stdin → stdout)
//!    └────────────────────no───> builtin(): `#include "file"` spliced in (recursively),
//!                                other `#` lines dropped, `\`-newline joined
//! ```
//!
//! Both produce the same instructions for what such files use: `#include "…"` (looked up
//! next to the including file, then in the context directory, as `-iquote` does), comment
//! lines (cpp reports them as invalid directives and drops them; buildah warns and goes on)
//! and line continuations (cpp joins them and pads with an empty line to keep line numbers).
//! `cpp`'s `# N "file"` line markers are comments to the Containerfile parser.
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::error::BuildError;

/// Whether a Containerfile name asks for preprocessing (`*.in`).
pub fn wants_preprocessing(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "in")
}

/// How to preprocess.
#[derive(Debug, Clone, Default)]
pub struct PreprocessOptions {
    /// The context directory (`-iquote`).
    pub context_dir: PathBuf,
    /// `--cpp-flag` values, after `$BUILDAH_CPPFLAGS`.
    pub cpp_flags: Vec<String>,
    /// `$BUILDAH_CPPFLAGS`, split into words.
    pub env_flags: Vec<String>,
    /// Use the built-in preprocessor even when `cpp` is installed.
    pub builtin_only: bool,
}

/// What a preprocessing pass gave: the text and the warnings cpp printed.
#[derive(Debug, Clone, Default)]
pub struct Preprocessed {
    /// The Containerfile text to parse.
    pub text: String,
    /// cpp's complaints (buildah logs them as `Ignoring …`).
    pub warnings: Vec<String>,
}

/// `cpp`'s path on `$PATH`, if any.
pub fn find_cpp() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("cpp"))
        .find(|p| p.is_file())
}

/// Preprocess `contents` (the file `name`, in directory `dir`).
pub fn preprocess(
    name: &Path,
    contents: &[u8],
    opts: &PreprocessOptions,
) -> Result<Preprocessed, BuildError> {
    match find_cpp().filter(|_| !opts.builtin_only) {
        Some(cpp) => run_cpp(&cpp, name, contents, opts),
        None => Ok(Preprocessed {
            text: builtin(name, contents, &opts.context_dir)?,
            warnings: Vec::new(),
        }),
    }
}

fn run_cpp(
    cpp: &Path,
    name: &Path,
    contents: &[u8],
    opts: &PreprocessOptions,
) -> Result<Preprocessed, BuildError> {
    use std::io::Write;
    let mut cmd = Command::new(cpp);
    cmd.arg("-E")
        .arg("-iquote")
        .arg(&opts.context_dir)
        .args(["-traditional", "-undef", "-"])
        .args(&opts.env_flags)
        .args(&opts.cpp_flags)
        // Quoted includes are looked up next to the input first; stdin has no directory, so
        // cpp runs in the Containerfile's (what buildah's `cpp … -` in the caller's cwd
        // gives for the usual `-f Containerfile.in` in the context).
        .current_dir(
            name.parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new(".")),
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let io = |e: std::io::Error| BuildError::Io {
        op: "preprocessing".into(),
        path: name.to_path_buf(),
        source: e,
    };
    let mut child = cmd.spawn().map_err(io)?;
    let mut stdin = child.stdin.take().expect("piped stdin");
    let data = contents.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&data);
    });
    let out = child.wait_with_output().map_err(io)?;
    let _ = writer.join();
    let stderr = String::from_utf8_lossy(&out.stderr).trim_end().to_string();
    if !out.status.success() && out.stdout.is_empty() {
        return Err(BuildError::Invalid(format!(
            "preprocessing {}: preprocessor produced no output: {stderr}",
            name.display()
        )));
    }
    let mut warnings = Vec::new();
    if !out.status.success() && !stderr.is_empty() {
        warnings.push(format!("Ignoring {stderr}\n"));
    }
    Ok(Preprocessed {
        text: String::from_utf8_lossy(&out.stdout).into_owned(),
        warnings,
    })
}

/// The built-in preprocessor (no `cpp` installed).
pub fn builtin(name: &Path, contents: &[u8], context_dir: &Path) -> Result<String, BuildError> {
    let mut out = String::new();
    let mut stack = Vec::new();
    builtin_into(name, contents, context_dir, &mut out, &mut stack)?;
    Ok(out)
}

fn builtin_into(
    name: &Path,
    contents: &[u8],
    context_dir: &Path,
    out: &mut String,
    stack: &mut Vec<PathBuf>,
) -> Result<(), BuildError> {
    if stack.len() > 200 {
        return Err(BuildError::Invalid(format!(
            "preprocessing {}: #include nested too deeply",
            name.display()
        )));
    }
    let text = String::from_utf8_lossy(contents);
    let lines: Vec<&str> = text.split('\n').collect();
    // A final newline does not start another (empty) line.
    let n = if text.ends_with('\n') {
        lines.len() - 1
    } else {
        lines.len()
    };
    let mut i = 0;
    while i < n {
        // Join `\`-newline continuations; cpp pads with one empty line per join.
        let mut line = lines[i].trim_end_matches('\r').to_string();
        let mut joined = 0;
        while line.ends_with('\\') && i + 1 < n {
            line.pop();
            i += 1;
            joined += 1;
            line.push_str(lines[i].trim_end_matches('\r'));
        }
        i += 1;
        let trimmed = line.trim_start();
        if let Some(rest) = trimmed.strip_prefix('#') {
            let rest = rest.trim_start();
            if let Some(arg) = rest.strip_prefix("include") {
                let arg = arg.trim();
                let file = arg
                    .strip_prefix('"')
                    .and_then(|a| a.strip_suffix('"'))
                    .ok_or_else(|| {
                        BuildError::Invalid(format!(
                            "preprocessing {}: #include expects \"FILENAME\", got {arg:?}",
                            name.display()
                        ))
                    })?;
                let here = name.parent().unwrap_or(Path::new("."));
                let candidates = [here.join(file), context_dir.join(file)];
                let found = candidates.iter().find(|p| p.is_file()).ok_or_else(|| {
                    BuildError::Invalid(format!(
                        "preprocessing {}: {file}: No such file or directory",
                        name.display()
                    ))
                })?;
                let data = std::fs::read(found).map_err(|e| BuildError::Io {
                    op: "reading".into(),
                    path: found.clone(),
                    source: e,
                })?;
                stack.push(found.clone());
                builtin_into(found, &data, context_dir, out, stack)?;
                stack.pop();
            } else {
                // A comment (an invalid directive to cpp) or another directive: dropped.
                out.push('\n');
            }
        } else {
            out.push_str(&line);
            out.push('\n');
        }
        for _ in 0..joined {
            out.push('\n');
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Instruction lines only: what the parser sees once comments and blanks are gone.
    fn instructions(s: &str) -> Vec<String> {
        s.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_string)
            .collect()
    }

    fn fixture() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join("Containerfile.in"),
            "FROM busybox\n# a comment\n#include \"./Containerfile.install\"\nRUN echo a \\\n  b\nENV X=1\n",
        )
        .unwrap();
        std::fs::write(
            d.path().join("Containerfile.install"),
            "RUN echo included\n# comment in include\n#include \"sub/more\"\n",
        )
        .unwrap();
        std::fs::create_dir(d.path().join("sub")).unwrap();
        std::fs::write(d.path().join("sub/more"), "LABEL deep=yes\n").unwrap();
        d
    }

    #[test]
    fn builtin_splices_includes_and_drops_comments() {
        let d = fixture();
        let name = d.path().join("Containerfile.in");
        let got = builtin(&name, &std::fs::read(&name).unwrap(), d.path()).unwrap();
        assert_eq!(
            instructions(&got),
            [
                "FROM busybox",
                "RUN echo included",
                "LABEL deep=yes",
                "RUN echo a   b",
                "ENV X=1"
            ]
        );
    }

    #[test]
    fn builtin_and_cpp_agree() {
        // hack/test.sh installs cpp (gcc) with the test tools; the comparison needs it.
        let cpp = find_cpp().expect("cpp on PATH");
        let d = fixture();
        let name = d.path().join("Containerfile.in");
        let data = std::fs::read(&name).unwrap();
        let opts = PreprocessOptions {
            context_dir: d.path().to_path_buf(),
            ..Default::default()
        };
        let via_cpp = run_cpp(&cpp, &name, &data, &opts).unwrap();
        let via_builtin = builtin(&name, &data, d.path()).unwrap();
        assert_eq!(instructions(&via_cpp.text), instructions(&via_builtin));
        assert!(!via_cpp.warnings.is_empty(), "cpp complains about comments");
    }

    #[test]
    fn missing_include_is_an_error() {
        let d = tempfile::tempdir().unwrap();
        let name = d.path().join("Dockerfile.in");
        let err = builtin(&name, b"#include \"nope\"\n", d.path()).unwrap_err();
        assert!(err.to_string().contains("nope"), "{err}");
    }
}
