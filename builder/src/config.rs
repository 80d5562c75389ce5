//! `config`: every `buildah config` setter as a pure function over [`ImageConfig`] and
//! [`BuilderState`]. Nothing here touches the rootfs or the store; the CLI builds a
//! [`ConfigChanges`] from its flags and calls [`apply`], then saves the builder.
//!
//! The setters on [`ImageConfig`] are shared with the Containerfile engine (ENV, LABEL, …).
use std::collections::BTreeMap;

use crate::builder::{BuilderState, ImageFormat};
use crate::error::{Error, Result};
use crate::image::{HealthConfig, History, ImageConfig};

/// Nanoseconds per second, for health-check defaults.
const SECOND_NS: i64 = 1_000_000_000;

/// The settings one `hod config` call changes. `None`/empty means "not given".
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ConfigChanges {
    /// `--add-history` (already resolved against `BUILDAH_HISTORY`).
    pub add_history: bool,
    /// `--annotation k=v`, `k-`, `-`.
    pub annotations: Vec<String>,
    /// `--arch`.
    pub arch: Option<String>,
    /// `--author`.
    pub author: Option<String>,
    /// `--cmd` (JSON array or shell words; empty clears).
    pub cmd: Option<String>,
    /// `--comment`.
    pub comment: Option<String>,
    /// `--created-by`.
    pub created_by: Option<String>,
    /// `--domainname`.
    pub domainname: Option<String>,
    /// `--entrypoint` (JSON array, or a string run by `/bin/sh -c`; empty clears).
    pub entrypoint: Option<String>,
    /// `--env k=v`, `k` (from the process environment), `k-`, `-`.
    pub env: Vec<String>,
    /// `--healthcheck`.
    pub healthcheck: Option<String>,
    /// `--healthcheck-interval` (Go duration).
    pub healthcheck_interval: Option<String>,
    /// `--healthcheck-retries`.
    pub healthcheck_retries: Option<i64>,
    /// `--healthcheck-start-interval` (Go duration).
    pub healthcheck_start_interval: Option<String>,
    /// `--healthcheck-start-period` (Go duration).
    pub healthcheck_start_period: Option<String>,
    /// `--healthcheck-timeout` (Go duration).
    pub healthcheck_timeout: Option<String>,
    /// `--history-comment`.
    pub history_comment: Option<String>,
    /// `--hostname`.
    pub hostname: Option<String>,
    /// `--label k=v`, `k`, `k-`, `-`.
    pub labels: Vec<String>,
    /// `--onbuild`.
    pub onbuild: Vec<String>,
    /// `--os`.
    pub os: Option<String>,
    /// `--os-feature f`, `f-`, `-`.
    pub os_features: Vec<String>,
    /// `--os-version`.
    pub os_version: Option<String>,
    /// `--port p`, `p-`, `-`.
    pub ports: Vec<String>,
    /// `--shell` (shell words).
    pub shell: Option<String>,
    /// `--stop-signal`.
    pub stop_signal: Option<String>,
    /// `--user`.
    pub user: Option<String>,
    /// `--variant`.
    pub variant: Option<String>,
    /// `--volume v`, `v-`, `-`.
    pub volumes: Vec<String>,
    /// `--workingdir`.
    pub workingdir: Option<String>,
    /// `--unsetenv`.
    pub unset_env: Vec<String>,
    /// `--unsetlabel`.
    pub unset_labels: Vec<String>,
    /// `--unsetannotation`.
    pub unset_annotations: Vec<String>,
}

// ---- setters on the canonical config ----
impl ImageConfig {
    /// The `KEY=value` environment.
    pub fn env(&self) -> &[String] {
        self.config.env.as_deref().unwrap_or(&[])
    }
    /// The value of `key` in the environment.
    pub fn env_value(&self, key: &str) -> Option<&str> {
        self.env()
            .iter()
            .find_map(|e| e.split_once('=').filter(|(k, _)| *k == key).map(|(_, v)| v))
    }
    /// Set `key=value`, replacing an earlier value (moved to the end, as buildah does).
    pub fn set_env(&mut self, key: &str, value: &str) {
        let prefix = format!("{key}=");
        let env = self.config.env.get_or_insert_with(Vec::new);
        env.retain(|e| !e.starts_with(&prefix));
        env.push(format!("{key}={value}"));
    }
    /// Remove `key` from the environment.
    pub fn unset_env(&mut self, key: &str) {
        let prefix = format!("{key}=");
        if let Some(env) = self.config.env.as_mut() {
            env.retain(|e| !e.starts_with(&prefix));
        }
    }
    /// Remove every environment variable.
    pub fn clear_env(&mut self) {
        self.config.env = Some(Vec::new());
    }
    /// Set a label.
    pub fn set_label(&mut self, key: &str, value: &str) {
        self.config
            .labels
            .get_or_insert_with(BTreeMap::new)
            .insert(key.to_string(), value.to_string());
    }
    /// Remove a label.
    pub fn unset_label(&mut self, key: &str) {
        if let Some(l) = self.config.labels.as_mut() {
            l.remove(key);
        }
    }
    /// Remove every label.
    pub fn clear_labels(&mut self) {
        self.config.labels = Some(BTreeMap::new());
    }
    /// Expose a port (`80`, `80/udp`), kept verbatim as buildah does.
    pub fn set_port(&mut self, port: &str) {
        self.config
            .exposed_ports
            .get_or_insert_with(BTreeMap::new)
            .insert(port.to_string(), empty_object());
    }
    /// Stop exposing a port.
    pub fn unset_port(&mut self, port: &str) {
        if let Some(p) = self.config.exposed_ports.as_mut() {
            p.remove(port);
        }
    }
    /// Stop exposing every port.
    pub fn clear_ports(&mut self) {
        self.config.exposed_ports = Some(BTreeMap::new());
    }
    /// Mark a volume.
    pub fn add_volume(&mut self, path: &str) {
        self.config
            .volumes
            .get_or_insert_with(BTreeMap::new)
            .insert(path.to_string(), empty_object());
    }
    /// Unmark a volume.
    pub fn remove_volume(&mut self, path: &str) {
        if let Some(v) = self.config.volumes.as_mut() {
            v.remove(path);
        }
    }
    /// Unmark every volume.
    pub fn clear_volumes(&mut self) {
        self.config.volumes = Some(BTreeMap::new());
    }
    /// Add a required OS feature (once).
    pub fn set_os_feature(&mut self, feature: &str) {
        let f = self.os_features.get_or_insert_with(Vec::new);
        if !f.iter().any(|x| x == feature) {
            f.push(feature.to_string());
        }
    }
    /// Remove a required OS feature.
    pub fn unset_os_feature(&mut self, feature: &str) {
        if let Some(f) = self.os_features.as_mut() {
            f.retain(|x| x != feature);
        }
    }
    /// Set the default command (`None` clears it).
    pub fn set_cmd(&mut self, cmd: Option<Vec<String>>) {
        self.config.cmd = cmd;
    }
    /// Set the entrypoint (`None` clears it).
    pub fn set_entrypoint(&mut self, ep: Option<Vec<String>>) {
        self.config.entrypoint = ep;
    }
    /// Add an ONBUILD trigger.
    pub fn add_onbuild(&mut self, trigger: &str) {
        self.config
            .on_build
            .get_or_insert_with(Vec::new)
            .push(trigger.to_string());
    }
    /// Set the Docker image-level comment (kept in the Docker-only top-level `comment`).
    pub fn set_comment(&mut self, comment: &str) {
        if comment.is_empty() {
            self.other.remove("comment");
        } else {
            self.other.insert(
                "comment".to_string(),
                serde_json::Value::String(comment.to_string()),
            );
        }
    }
    /// The Docker image-level comment.
    pub fn comment(&self) -> Option<&str> {
        self.other.get("comment").and_then(|v| v.as_str())
    }
}

fn empty_object() -> serde_json::Value {
    serde_json::Value::Object(serde_json::Map::new())
}

fn opt_string(s: &str) -> Option<String> {
    if s.is_empty() {
        None
    } else {
        Some(s.to_string())
    }
}

/// Parse `--cmd`: a JSON array of strings, else shell words; blank clears.
pub fn parse_cmd(s: &str) -> Result<Option<Vec<String>>> {
    if s.trim().is_empty() {
        return Ok(None);
    }
    if let Ok(v) = serde_json::from_str::<Vec<String>>(s) {
        return Ok(Some(v));
    }
    shell_words(s)
        .map(Some)
        .map_err(|e| Error::invalid(format!("parsing --cmd {s:?}: {e}")))
}

/// Parse `--entrypoint`: a JSON array of strings, else `["/bin/sh", "-c", s]`; blank clears.
/// The flag says whether the JSON (exec) form was used.
pub fn parse_entrypoint(s: &str) -> (Option<Vec<String>>, bool) {
    if s.trim().is_empty() {
        return (None, false);
    }
    if let Ok(v) = serde_json::from_str::<Vec<String>>(s) {
        return (Some(v), true);
    }
    (
        Some(vec!["/bin/sh".to_string(), "-c".to_string(), s.to_string()]),
        false,
    )
}

/// Split a string into words the way go-shellwords does: blanks separate, single quotes are
/// literal, double quotes allow `\"` `\\` `\$`, a backslash outside quotes escapes the next char.
pub fn shell_words(s: &str) -> std::result::Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\n' | '\r' => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some(n) => cur.push(n),
                    None => cur.push('\\'),
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(n) => cur.push(n),
                        None => return Err("invalid command line string".to_string()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.peek() {
                            Some(&n) if matches!(n, '"' | '\\' | '$' | '`') => {
                                cur.push(n);
                                chars.next();
                            }
                            _ => cur.push('\\'),
                        },
                        Some(n) => cur.push(n),
                        None => return Err("invalid command line string".to_string()),
                    }
                }
            }
            other => {
                in_word = true;
                cur.push(other);
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    Ok(out)
}

/// Parse a Go `time.ParseDuration` string (`30s`, `1m30s`, `1.5h`, `250ms`) into nanoseconds.
pub fn parse_go_duration(s: &str) -> Result<i64> {
    let bad = || Error::invalid(format!("time: invalid duration {s:?}"));
    let (neg, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return Err(bad());
        }
        let num: f64 = rest[..num_len].parse().map_err(|_| bad())?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => {
                return Err(Error::invalid(format!(
                    "time: missing or unknown unit in duration {s:?}"
                )))
            }
        };
        rest = &rest[unit_len..];
        total += num * unit;
    }
    let ns = total.round() as i64;
    Ok(if neg { -ns } else { ns })
}

/// Expand `$VAR` / `${VAR}` as Go's `os.Expand` does, looking names up with `lookup`.
/// Names `lookup` does not know are returned in the second value (and expand to themselves,
/// as buildah's `config --env` does).
pub fn expand_vars(s: &str, lookup: &dyn Fn(&str) -> Option<String>) -> (String, Vec<String>) {
    let mut out = String::new();
    let mut missing = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    let mut resolve = |name: &str, out: &mut String| match lookup(name) {
        Some(v) => out.push_str(&v),
        None => {
            missing.push(name.to_string());
            out.push_str(name);
        }
    };
    while i < b.len() {
        if b[i] != b'$' || i + 1 >= b.len() {
            let ch = s[i..].chars().next().unwrap_or('$');
            out.push(ch);
            i += ch.len_utf8();
            continue;
        }
        let next = b[i + 1];
        if next == b'{' {
            match s[i + 2..].find('}') {
                Some(end) => {
                    let name = &s[i + 2..i + 2 + end];
                    if !name.is_empty() {
                        resolve(name, &mut out);
                    }
                    i += end + 3;
                }
                None => {
                    // Go consumes the bad syntax "${" and drops it.
                    i += 2;
                }
            }
        } else if b"*#$@!?-".contains(&next) || next.is_ascii_digit() {
            resolve(&s[i + 1..i + 2], &mut out);
            i += 2;
        } else if next.is_ascii_alphanumeric() || next == b'_' {
            let mut j = i + 1;
            while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
                j += 1;
            }
            resolve(&s[i + 1..j], &mut out);
            i = j;
        } else {
            // Go drops a `$` followed by an invalid character... but keeps the character.
            i += 1;
        }
    }
    (out, missing)
}

/// Apply `changes` to a working container's state, in buildah's order. Returns warnings for
/// the user (settings the OCI format drops, ignored cmd, unexpandable variables).
/// `getenv` reads the process environment (for `--env NAME` without a value).
pub fn apply(
    state: &mut BuilderState,
    ch: &ConfigChanges,
    getenv: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<String>> {
    let mut warnings = Vec::new();
    let mut history: Vec<String> = Vec::new();
    let docker = state.format == ImageFormat::Docker;
    let c = &mut state.config;

    if let Some(a) = &ch.author {
        c.author = opt_string(a);
    }
    if let Some(v) = &ch.created_by {
        state.created_by = v.clone();
    }
    if let Some(v) = &ch.arch {
        c.architecture = v.clone();
    }
    if let Some(v) = &ch.variant {
        c.variant = opt_string(v);
    }
    if let Some(v) = &ch.os {
        c.os = v.clone();
    }
    for f in &ch.os_features {
        if f == "-" {
            c.os_features = None;
        } else if let Some(name) = f.strip_suffix('-') {
            c.unset_os_feature(name);
        } else {
            c.set_os_feature(f);
        }
    }
    if let Some(v) = &ch.os_version {
        c.os_version = opt_string(v);
    }
    if let Some(u) = &ch.user {
        c.config.user = Some(u.clone());
        history.push(format!("USER {u}"));
    }
    if let Some(sh) = &ch.shell {
        let words =
            shell_words(sh).map_err(|e| Error::invalid(format!("parsing --shell {sh:?}: {e}")))?;
        if !docker {
            warnings.push(format!("SHELL is not supported for OCI image format, {sh} will be ignored. Must use `docker` format"));
        }
        c.config.shell = Some(words);
        history.push(format!("SHELL {sh}"));
    }
    if let Some(s) = &ch.stop_signal {
        c.config.stop_signal = opt_string(s);
        history.push(format!("STOPSIGNAL {s}"));
    }
    if !ch.ports.is_empty() {
        for p in &ch.ports {
            if p.starts_with('-') {
                c.clear_ports();
            } else if let Some(name) = p.strip_suffix('-') {
                c.unset_port(name);
            } else {
                c.set_port(p);
            }
        }
        history.push(format!("EXPOSE {}", ch.ports.join(" ")));
    }
    for spec in &ch.env {
        match spec.split_once('=') {
            Some((k, v)) => {
                let cfg = c.clone();
                let lookup = |name: &str| cfg.env_value(name).map(str::to_string);
                let (value, missing) = expand_vars(v, &lookup);
                for m in missing {
                    warnings.push(format!(
                        "error expanding variable {m:?}: no value set in configuration"
                    ));
                }
                c.set_env(k, &value);
            }
            None if spec == "-" => c.clear_env(),
            None if spec.ends_with('-') => c.unset_env(&spec[..spec.len() - 1]),
            None => match getenv(spec).filter(|v| !v.is_empty()) {
                Some(v) => c.set_env(spec, &v),
                None => {
                    return Err(Error::invalid(format!(
                        "setting env {spec:?}: no value given"
                    )))
                }
            },
        }
    }
    if !ch.env.is_empty() {
        history.push(format!("ENV {}", ch.env.join(" ")));
    }
    for k in &ch.unset_env {
        c.unset_env(k);
    }
    if let Some(ep) = &ch.entrypoint {
        let (value, json) = parse_entrypoint(ep);
        let cmd = c.config.cmd.clone().unwrap_or_default();
        if value.is_some() && !cmd.is_empty() {
            if json {
                warnings.push(format!(
                    "cmd {:?} exists and will be passed to entrypoint as a parameter",
                    cmd.join(" ")
                ));
            } else {
                warnings.push(format!(
                    "cmd {:?} exists but will be ignored because of entrypoint settings",
                    cmd.join(" ")
                ));
            }
        }
        c.set_entrypoint(value);
        history.push(format!("ENTRYPOINT {ep}"));
    }
    if let Some(cmd) = &ch.cmd {
        c.set_cmd(parse_cmd(cmd)?);
        history.push(format!("CMD {cmd}"));
    }
    for v in &ch.volumes {
        if v == "-" {
            c.clear_volumes();
        } else if let Some(p) = v.strip_suffix('-') {
            c.remove_volume(p);
        } else {
            c.add_volume(v);
        }
        history.push(format!("VOLUME {v}"));
    }
    if let Some(h) = apply_healthcheck(c, ch, docker, &mut warnings)? {
        history.push(h);
    }
    if !ch.labels.is_empty() {
        for l in &ch.labels {
            match l.split_once('=') {
                Some((k, v)) => c.set_label(k, v),
                None if l == "-" => c.clear_labels(),
                None if l.ends_with('-') => c.unset_label(&l[..l.len() - 1]),
                None => c.set_label(l, ""),
            }
        }
        history.push(format!("LABEL {}", ch.labels.join(" ")));
    }
    for k in &ch.unset_labels {
        c.unset_label(k);
    }
    for k in &ch.unset_annotations {
        state.annotations.remove(k);
    }
    if let Some(w) = &ch.workingdir {
        c.config.working_dir = opt_string(w);
        history.push(format!("WORKDIR {w}"));
    }
    if let Some(cm) = &ch.comment {
        if !cm.is_empty() && !docker {
            warnings.push(format!("COMMENT is not supported for OCI image format, comment {cm} will be ignored. Must use `docker` format"));
        }
        c.set_comment(cm);
    }
    if let Some(h) = &ch.history_comment {
        state.history_comment = h.clone();
    }
    if let Some(d) = &ch.domainname {
        if !d.is_empty() && !docker {
            warnings.push(format!("DOMAINNAME is not supported for OCI image format, domainname {d} will be ignored. Must use `docker` format"));
        }
        c.config.domainname = opt_string(d);
    }
    if let Some(h) = &ch.hostname {
        if !h.is_empty() && !docker {
            warnings.push(format!("HOSTNAME is not supported for OCI image format, hostname {h} will be ignored. Must use `docker` format"));
        }
        c.config.hostname = opt_string(h);
    }
    for ob in &ch.onbuild {
        if !ob.is_empty() && !docker {
            warnings.push(format!("ONBUILD is not supported for OCI image format, {ob} will be ignored. Must use `docker` format"));
        }
        c.add_onbuild(ob);
        history.push(format!("ONBUILD {ob}"));
    }
    for a in &ch.annotations {
        match a.split_once('=') {
            Some((k, v)) => {
                state.annotations.insert(k.to_string(), v.to_string());
            }
            None if a == "-" => state.annotations.clear(),
            None if a.ends_with('-') => {
                state.annotations.remove(&a[..a.len() - 1]);
            }
            None => {
                state.annotations.insert(a.clone(), String::new());
            }
        }
    }
    if ch.add_history {
        // Entries for the next commit, as bud's steps and run/copy --add-history: a commit
        // with --timestamp dates them all alike (buildah 1.28.2 keeps the wall-clock time
        // here, so its --timestamp builds are not reproducible).
        let now = crate::fsutil::now_rfc3339();
        for h in history {
            state.appended_history.push(History {
                created: Some(now.clone()),
                created_by: Some(format!("/bin/sh -c #(nop) {h}")),
                empty_layer: true,
                ..Default::default()
            });
        }
    }
    Ok(warnings)
}

/// The health-check part of [`apply`]; returns the history text when something changed.
fn apply_healthcheck(
    c: &mut ImageConfig,
    ch: &ConfigChanges,
    docker: bool,
    warnings: &mut Vec<String>,
) -> Result<Option<String>> {
    let any = ch.healthcheck.is_some()
        || ch.healthcheck_interval.is_some()
        || ch.healthcheck_retries.is_some()
        || ch.healthcheck_start_period.is_some()
        || ch.healthcheck_start_interval.is_some()
        || ch.healthcheck_timeout.is_some();
    if !any {
        return Ok(None);
    }
    let mut hc = c.config.healthcheck.clone().unwrap_or(HealthConfig {
        test: Some(vec!["NONE".to_string()]),
        interval: Some(30 * SECOND_NS),
        start_period: None,
        timeout: Some(30 * SECOND_NS),
        retries: Some(3),
        start_interval: None,
    });
    let mut args = String::new();
    if let Some(t) = &ch.healthcheck {
        let words = shell_words(t)
            .map_err(|e| Error::invalid(format!("parsing --healthcheck {t:?}: {e}")))?;
        hc.test = Some(words);
    }
    let dur = |flag: &str, v: &str| {
        parse_go_duration(v).map_err(|e| Error::invalid(format!("parsing --{flag} {v:?}: {e}")))
    };
    if let Some(v) = &ch.healthcheck_interval {
        hc.interval = Some(dur("healthcheck-interval", v)?);
        args.push_str(&format!("--interval={v} "));
    }
    if let Some(r) = ch.healthcheck_retries {
        hc.retries = Some(r);
        args.push_str(&format!("--retries={r} "));
    }
    if let Some(v) = &ch.healthcheck_start_period {
        hc.start_period = Some(dur("healthcheck-start-period", v)?);
        args.push_str(&format!("--start-period={v} "));
    }
    if let Some(v) = &ch.healthcheck_start_interval {
        hc.start_interval = Some(dur("healthcheck-start-interval", v)?);
        args.push_str(&format!("--start-interval={v} "));
    }
    if let Some(v) = &ch.healthcheck_timeout {
        hc.timeout = Some(dur("healthcheck-timeout", v)?);
        args.push_str(&format!("--timeout={v} "));
    }
    if hc.test.as_ref().is_none_or(|t| t.is_empty()) {
        c.config.healthcheck = None;
        Ok(Some("HEALTHCHECK NONE".to_string()))
    } else {
        if !docker {
            warnings.push("HEALTHCHECK is not supported for OCI image format and will be ignored. Must use `docker` format".to_string());
        }
        c.config.healthcheck = Some(hc);
        Ok(Some(format!(
            "HEALTHCHECK {args}{}",
            ch.healthcheck.clone().unwrap_or_default()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> BuilderState {
        BuilderState {
            config: ImageConfig::scratch(),
            ..Default::default()
        }
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn cmd_forms() {
        let cases: &[(&str, Option<Vec<&str>>)] = &[
            ("", None),
            ("   ", None),
            (r#"["/bin/ls","-l"]"#, Some(vec!["/bin/ls", "-l"])),
            ("ls -l /tmp", Some(vec!["ls", "-l", "/tmp"])),
            (r#"sh -c "echo hi""#, Some(vec!["sh", "-c", "echo hi"])),
            ("echo 'a b' c\\ d", Some(vec!["echo", "a b", "c d"])),
        ];
        for (input, want) in cases {
            let got = parse_cmd(input).unwrap();
            let want = want
                .as_ref()
                .map(|v| v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
            assert_eq!(got, want, "input {input:?}");
        }
        assert!(parse_cmd("echo 'unterminated").is_err());
    }

    #[test]
    fn entrypoint_forms() {
        assert_eq!(
            parse_entrypoint("/usr/bin/notashell").0.unwrap(),
            vec!["/bin/sh", "-c", "/usr/bin/notashell"]
        );
        let (ep, json) = parse_entrypoint(r#"["/usr/bin/notashell"]"#);
        assert_eq!(ep.unwrap(), vec!["/usr/bin/notashell"]);
        assert!(json);
        assert_eq!(parse_entrypoint("").0, None);
    }

    #[test]
    fn durations() {
        let cases = [
            ("30s", 30 * SECOND_NS),
            ("1m30s", 90 * SECOND_NS),
            ("1.5s", 1_500_000_000),
            ("250ms", 250_000_000),
            ("2h", 7200 * SECOND_NS),
            ("0", 0),
            ("10us", 10_000),
        ];
        for (s, want) in cases {
            assert_eq!(parse_go_duration(s).unwrap(), want, "{s}");
        }
        for bad in ["", "30", "s", "3x", "1..2s"] {
            assert!(parse_go_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn expand() {
        let lookup = |n: &str| match n {
            "PATH" => Some("/bin".to_string()),
            "A" => Some("x".to_string()),
            _ => None,
        };
        let cases = [
            ("$PATH:/usr/local/bin", "/bin:/usr/local/bin", vec![]),
            ("${A}y", "xy", vec![]),
            ("$Ay", "Ay", vec!["Ay"]),
            ("plain", "plain", vec![]),
            ("$NOPE/z", "NOPE/z", vec!["NOPE"]),
            ("cost $", "cost $", vec![]),
        ];
        for (input, want, missing) in cases {
            let (got, miss) = expand_vars(input, &lookup);
            assert_eq!(got, want, "{input}");
            assert_eq!(miss, missing, "{input}");
        }
    }

    #[test]
    fn env_set_unset_clear_and_expansion() {
        let mut s = state();
        let ch = ConfigChanges {
            env: vec!["A=1".into(), "B=2".into(), "A=3".into(), "C=$A-$B".into()],
            ..Default::default()
        };
        apply(&mut s, &ch, &no_env).unwrap();
        assert_eq!(s.config.env(), &["B=2", "A=3", "C=3-2"]);
        let ch = ConfigChanges {
            env: vec!["B-".into()],
            ..Default::default()
        };
        apply(&mut s, &ch, &no_env).unwrap();
        assert_eq!(s.config.env(), &["A=3", "C=3-2"]);
        let ch = ConfigChanges {
            env: vec!["FROMHOST".into()],
            ..Default::default()
        };
        apply(&mut s, &ch, &|n| (n == "FROMHOST").then(|| "h".to_string())).unwrap();
        assert_eq!(s.config.env_value("FROMHOST"), Some("h"));
        let ch = ConfigChanges {
            env: vec!["MISSING".into()],
            ..Default::default()
        };
        let err = apply(&mut s, &ch, &no_env).unwrap_err();
        assert_eq!(err.to_string(), r#"setting env "MISSING": no value given"#);
        let ch = ConfigChanges {
            env: vec!["-".into()],
            ..Default::default()
        };
        apply(&mut s, &ch, &no_env).unwrap();
        assert!(s.config.env().is_empty());
    }

    #[test]
    fn labels_annotations_ports_volumes() {
        let mut s = state();
        let ch = ConfigChanges {
            labels: vec!["a=1".into(), "b".into(), "c=x=y".into()],
            annotations: vec!["n=1".into(), "m=2".into()],
            ports: vec!["80".into(), "53/udp".into()],
            volumes: vec!["/data".into(), "/cache".into()],
            ..Default::default()
        };
        apply(&mut s, &ch, &no_env).unwrap();
        let labels = s.config.config.labels.clone().unwrap();
        assert_eq!(labels.get("b").map(String::as_str), Some(""));
        assert_eq!(labels.get("c").map(String::as_str), Some("x=y"));
        assert_eq!(
            s.config
                .config
                .exposed_ports
                .as_ref()
                .unwrap()
                .keys()
                .collect::<Vec<_>>(),
            vec!["53/udp", "80"]
        );
        let ch = ConfigChanges {
            labels: vec!["a-".into()],
            annotations: vec!["n-".into()],
            ports: vec!["80-".into()],
            volumes: vec!["/data-".into()],
            unset_labels: vec!["b".into()],
            ..Default::default()
        };
        apply(&mut s, &ch, &no_env).unwrap();
        assert_eq!(
            s.config
                .config
                .labels
                .as_ref()
                .unwrap()
                .keys()
                .collect::<Vec<_>>(),
            vec!["c"]
        );
        assert_eq!(s.annotations.keys().collect::<Vec<_>>(), vec!["m"]);
        assert_eq!(s.config.config.exposed_ports.as_ref().unwrap().len(), 1);
        assert_eq!(
            s.config
                .config
                .volumes
                .as_ref()
                .unwrap()
                .keys()
                .collect::<Vec<_>>(),
            vec!["/cache"]
        );
        let ch = ConfigChanges {
            labels: vec!["-".into()],
            annotations: vec!["-".into()],
            ports: vec!["-".into()],
            volumes: vec!["-".into()],
            ..Default::default()
        };
        apply(&mut s, &ch, &no_env).unwrap();
        assert!(s.config.config.labels.as_ref().unwrap().is_empty());
        assert!(s.annotations.is_empty());
        assert!(s.config.config.exposed_ports.as_ref().unwrap().is_empty());
        assert!(s.config.config.volumes.as_ref().unwrap().is_empty());
    }

    #[test]
    fn scalars_and_history() {
        let mut s = state();
        let ch = ConfigChanges {
            add_history: true,
            author: Some("Jane".into()),
            user: Some("1000:1000".into()),
            workingdir: Some("/srv".into()),
            stop_signal: Some("SIGINT".into()),
            arch: Some("arm64".into()),
            variant: Some("v8".into()),
            os_features: vec!["win32k".into(), "win32k".into(), "x".into(), "x-".into()],
            entrypoint: Some("/entry.sh".into()),
            cmd: Some(r#"["a"]"#.into()),
            ..Default::default()
        };
        let warnings = apply(&mut s, &ch, &no_env).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(s.config.author.as_deref(), Some("Jane"));
        assert_eq!(s.config.config.user.as_deref(), Some("1000:1000"));
        assert_eq!(s.config.config.working_dir.as_deref(), Some("/srv"));
        assert_eq!(s.config.architecture, "arm64");
        assert_eq!(s.config.variant.as_deref(), Some("v8"));
        assert_eq!(
            s.config.os_features.as_deref(),
            Some(&["win32k".to_string()][..])
        );
        assert_eq!(
            s.config.config.entrypoint.as_deref().unwrap(),
            &["/bin/sh", "-c", "/entry.sh"]
        );
        assert_eq!(s.config.config.cmd.as_deref().unwrap(), &["a"]);
        let hist: Vec<_> = s
            .appended_history
            .iter()
            .map(|h| h.created_by.clone().unwrap())
            .collect();
        assert_eq!(
            hist,
            vec![
                "/bin/sh -c #(nop) USER 1000:1000",
                "/bin/sh -c #(nop) STOPSIGNAL SIGINT",
                "/bin/sh -c #(nop) ENTRYPOINT /entry.sh",
                "/bin/sh -c #(nop) CMD [\"a\"]",
                "/bin/sh -c #(nop) WORKDIR /srv",
            ]
        );
        assert!(s.appended_history.iter().all(|h| h.empty_layer));
        // Entrypoint with an existing cmd warns.
        let ch = ConfigChanges {
            entrypoint: Some("x".into()),
            ..Default::default()
        };
        let w = apply(&mut s, &ch, &no_env).unwrap();
        assert_eq!(
            w,
            vec![r#"cmd "a" exists but will be ignored because of entrypoint settings"#]
        );
    }

    #[test]
    fn healthcheck() {
        let mut s = state();
        s.format = ImageFormat::Docker;
        let ch = ConfigChanges {
            healthcheck: Some("CMD-SHELL curl -f http://localhost/".into()),
            healthcheck_interval: Some("5s".into()),
            healthcheck_retries: Some(4),
            ..Default::default()
        };
        let w = apply(&mut s, &ch, &no_env).unwrap();
        assert!(w.is_empty());
        let hc = s.config.config.healthcheck.clone().unwrap();
        assert_eq!(
            hc.test.unwrap(),
            vec!["CMD-SHELL", "curl", "-f", "http://localhost/"]
        );
        assert_eq!(hc.interval, Some(5 * SECOND_NS));
        assert_eq!(hc.timeout, Some(30 * SECOND_NS));
        assert_eq!(hc.retries, Some(4));
        let ch = ConfigChanges {
            healthcheck: Some(String::new()),
            ..Default::default()
        };
        apply(&mut s, &ch, &no_env).unwrap();
        assert!(s.config.config.healthcheck.is_none());
        assert!(apply(
            &mut s,
            &ConfigChanges {
                healthcheck_timeout: Some("soon".into()),
                ..Default::default()
            },
            &no_env
        )
        .is_err());
    }

    #[test]
    fn oci_format_warns_on_docker_only_settings() {
        let mut s = state();
        let ch = ConfigChanges {
            hostname: Some("h".into()),
            comment: Some("c".into()),
            onbuild: vec!["RUN x".into()],
            ..Default::default()
        };
        let w = apply(&mut s, &ch, &no_env).unwrap();
        assert_eq!(w.len(), 3, "{w:?}");
        assert_eq!(s.config.comment(), Some("c"));
        assert_eq!(s.config.config.hostname.as_deref(), Some("h"));
        assert_eq!(s.config.config.on_build.as_deref().unwrap(), &["RUN x"]);
    }
}
