//! containers.conf, read as containers/common reads it, typed: the `[containers]` keys
//! buildah honours for the containers it creates, and the `[engine]` keys of pulls and
//! pushes.
//!
//! ```text
//!  CONTAINERS_CONF set?  ── yes ──> that file only
//!        │ no
//!        ▼
//!  /usr/share/containers/containers.conf, /usr/share/containers/containers.conf.d/*.conf,
//!  /etc/containers/containers.conf,       /etc/containers/containers.conf.d/*.conf,
//!  (non-root) $XDG_CONFIG_HOME|~/.config/containers/containers.conf (+ .d/*.conf)
//!        │ each file on top of the ones before: a key a later file sets replaces it
//!        ▼
//!  ContainersConf ──under(&from's RunDefaults)──> the container's RunDefaults (hod.json)
//! ```
//!
//! `from` (and so every `bud` stage) records the result in the container, as buildah does:
//! a later `run` uses what was in force when the container was made, and a `--ulimit`,
//! `--device`, `--cap-add`, namespace flag … given to `from`/`bud` wins over the file.
//! `default_ulimits` is also read again by each `run` and put under everything else (as
//! buildah's run does).
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::run::{Namespaces, Resources, RunDefaults, RunError, Security};

/// The `[containers]` keys hod honours, as written in the file.
#[derive(Debug, Clone, Default, Deserialize)]
struct RawContainers {
    default_ulimits: Option<Vec<String>>,
    devices: Option<Vec<String>>,
    default_capabilities: Option<Vec<String>>,
    shm_size: Option<String>,
    ipcns: Option<String>,
    pidns: Option<String>,
    utsns: Option<String>,
    netns: Option<String>,
    userns: Option<String>,
    cgroupns: Option<String>,
}

/// The `[engine]` keys hod honours.
#[derive(Debug, Clone, Default, Deserialize)]
struct RawEngine {
    retry: Option<u32>,
    retry_delay: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct RawFile {
    #[serde(default)]
    containers: RawContainers,
    #[serde(default)]
    engine: RawEngine,
}

macro_rules! overlay {
    ($dst:expr, $src:expr, $($f:ident),*) => { $( if $src.$f.is_some() { $dst.$f = $src.$f.clone(); } )* };
}

impl RawFile {
    fn overlay(&mut self, top: &RawFile) {
        let (d, s) = (&mut self.containers, &top.containers);
        overlay!(
            d,
            s,
            default_ulimits,
            devices,
            default_capabilities,
            shm_size,
            ipcns,
            pidns,
            utsns,
            netns,
            userns,
            cgroupns
        );
        overlay!(self.engine, top.engine, retry, retry_delay);
    }
}

/// containers.conf's settings, typed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ContainersConf {
    /// `[containers]`: what new containers start from.
    pub run_defaults: RunDefaults,
    /// `[engine] retry`: attempts of a failed pull or push.
    pub retry: Option<u32>,
    /// `[engine] retry_delay` (Go duration, e.g. `5s`).
    pub retry_delay: Option<String>,
    /// The files read, in order.
    pub files: Vec<PathBuf>,
}

impl ContainersConf {
    /// The files containers/common reads, in order (existing ones only).
    pub fn paths() -> Vec<PathBuf> {
        if let Some(p) = std::env::var_os("CONTAINERS_CONF").filter(|p| !p.is_empty()) {
            return vec![PathBuf::from(p)];
        }
        let mut out = Vec::new();
        let mut add = |file: PathBuf| {
            if file.is_file() {
                out.push(file.clone());
            }
            let mut dropins: Vec<PathBuf> = std::fs::read_dir(file.with_extension("conf.d"))
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "conf") && p.is_file())
                .collect();
            dropins.sort();
            out.extend(dropins);
        };
        add(PathBuf::from("/usr/share/containers/containers.conf"));
        add(PathBuf::from("/etc/containers/containers.conf"));
        if !rustix::process::geteuid().is_root() {
            let base = std::env::var_os("XDG_CONFIG_HOME")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".config")));
            if let Some(b) = base {
                add(b.join("containers/containers.conf"));
            }
        }
        out
    }

    /// Read the files of [`ContainersConf::paths`]. A missing `CONTAINERS_CONF` file is
    /// an error, as in containers/common.
    pub fn load() -> Result<ContainersConf, RunError> {
        let files = Self::paths();
        let mut texts = Vec::new();
        for f in &files {
            let text = std::fs::read_to_string(f).map_err(|e| RunError::Io {
                op: "reading containers.conf".into(),
                path: f.clone(),
                source: e,
            })?;
            texts.push((f.clone(), text));
        }
        let mut c = Self::parse_all(&texts)?;
        c.files = files;
        Ok(c)
    }

    /// Parse file contents (name, text), each on top of the ones before.
    pub fn parse_all(texts: &[(PathBuf, String)]) -> Result<ContainersConf, RunError> {
        let mut raw = RawFile::default();
        for (path, text) in texts {
            let f: RawFile = toml::from_str(text).map_err(|e| {
                RunError::Invalid(format!(
                    "decoding containers.conf {}: {}",
                    path.display(),
                    e.message()
                ))
            })?;
            raw.overlay(&f);
        }
        Self::from_raw(raw)
    }

    fn from_raw(raw: RawFile) -> Result<ContainersConf, RunError> {
        let c = raw.containers;
        let in_conf = |key: &str, e: RunError| {
            RunError::Invalid(format!("containers.conf [containers] {key}: {e}"))
        };
        let namespaces = Namespaces::parse(
            c.netns.as_deref(),
            c.pidns.as_deref(),
            c.ipcns.as_deref(),
            c.utsns.as_deref(),
            c.cgroupns.as_deref(),
            c.userns.as_deref().filter(|u| !u.is_empty()),
        )
        .map_err(|e| in_conf("namespaces", e))?;
        let resources = Resources::parse(
            None,
            c.shm_size.as_deref(),
            c.default_ulimits.as_deref().unwrap_or_default(),
        )
        .map_err(|e| in_conf("default_ulimits/shm_size", e))?;
        let d = RunDefaults {
            namespaces,
            resources,
            devices: c.devices.unwrap_or_default(),
            security: Security {
                base_capabilities: c.default_capabilities,
                ..Default::default()
            },
            ..Default::default()
        };
        Ok(ContainersConf {
            run_defaults: d,
            retry: raw.engine.retry,
            retry_delay: raw.engine.retry_delay,
            files: Vec::new(),
        })
    }

    /// `given` (what `from`/`bud` was told) on top of these defaults: a setting given wins,
    /// devices and ulimits add up (one given for the same limit replaces the file's).
    pub fn under(&self, given: &RunDefaults) -> RunDefaults {
        let conf = &self.run_defaults;
        let mut d = given.clone();
        d.namespaces = given.namespaces.or(&conf.namespaces);
        d.resources = given.resources.or(&conf.resources);
        d.devices = conf.devices.iter().chain(&given.devices).cloned().collect();
        if d.security.base_capabilities.is_none() {
            d.security.base_capabilities = conf.security.base_capabilities.clone();
        }
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::NamespaceMode;

    fn conf(texts: &[&str]) -> ContainersConf {
        let t: Vec<(PathBuf, String)> = texts
            .iter()
            .map(|t| (PathBuf::from("x.conf"), t.to_string()))
            .collect();
        ContainersConf::parse_all(&t).unwrap()
    }

    #[test]
    fn keys_become_typed_run_defaults() {
        let c = conf(&[r#"
[containers]
default_ulimits = ["nofile=500:500"]
devices = ["/dev/foo:/dev/foo1:rmw"]
default_capabilities = ["CHOWN", "AUDIT_WRITE"]
shm_size = "200k"
env = ["foo=bar"]
label = true
ipcns = "host"
netns = "private"
[engine]
runtime = "runc"
retry = 10
retry_delay = "5s"
"#]);
        let d = &c.run_defaults;
        assert_eq!(d.resources.ulimits[0].name, "RLIMIT_NOFILE");
        assert_eq!(d.resources.ulimits[0].soft, 500);
        assert_eq!(d.resources.shm_size, Some(200 << 10));
        assert_eq!(d.devices, ["/dev/foo:/dev/foo1:rmw"]);
        assert_eq!(
            d.security.base_capabilities.as_deref(),
            Some(&["CHOWN".to_string(), "AUDIT_WRITE".to_string()][..])
        );
        assert_eq!(d.namespaces.ipc, Some(NamespaceMode::Host));
        assert_eq!(d.namespaces.pid, None);
        assert_eq!(c.retry, Some(10));
        assert_eq!(c.retry_delay.as_deref(), Some("5s"));
    }

    #[test]
    fn later_files_replace_the_keys_they_set_and_flags_win() {
        let c = conf(&[
            "[containers]\nshm_size = \"1m\"\ndefault_ulimits = [\"nofile=1:1\", \"nproc=5:5\"]\n",
            "[containers]\ndefault_ulimits = [\"nofile=500:500\"]\n",
        ]);
        assert_eq!(c.run_defaults.resources.shm_size, Some(1 << 20));
        assert_eq!(c.run_defaults.resources.ulimits.len(), 1);
        let given = RunDefaults {
            resources: Resources::parse(None, None, &["nofile=300:400".into()]).unwrap(),
            devices: vec!["/dev/null:/dev/n2".into()],
            ..Default::default()
        };
        let d = c.under(&given);
        assert_eq!(d.resources.ulimits.len(), 1);
        assert_eq!(d.resources.ulimits[0].soft, 300);
        assert_eq!(d.resources.shm_size, Some(1 << 20));
        assert_eq!(d.devices, ["/dev/null:/dev/n2"]);
    }

    #[test]
    fn a_bad_value_names_the_key() {
        let t = vec![(
            PathBuf::from("c.conf"),
            "[containers]\npidns = \"sideways\"\n".to_string(),
        )];
        let e = ContainersConf::parse_all(&t).unwrap_err().to_string();
        assert!(e.contains("namespaces") && e.contains("sideways"), "{e}");
        let t = vec![(PathBuf::from("c.conf"), "[containers\n".to_string())];
        let e = ContainersConf::parse_all(&t).unwrap_err().to_string();
        assert!(e.contains("c.conf"), "{e}");
    }
}
