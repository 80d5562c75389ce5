//! Projection of the canonical [`ImageConfig`] onto the OCI and Docker config documents.
//!
//! Serialisation is deterministic: struct fields in a fixed order, maps sorted (`BTreeMap`),
//! compact JSON. The image ID is the sha256 of these bytes.
use super::config::ImageConfig;
use super::digest::Digest;
use super::manifest::to_json;

/// A Docker-only field the OCI projection dropped, for the caller to warn about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dropped {
    /// The field's JSON name (`Healthcheck`, `OnBuild`, `docker_version`, …).
    pub field: String,
}

impl Dropped {
    /// The warning buildah prints for this field.
    pub fn warning(&self) -> String {
        match self.field.as_str() {
            "Healthcheck" => "HEALTHCHECK is not supported for OCI image format and will be ignored. Must use `docker` format".to_string(),
            "OnBuild" => "ONBUILD is not supported for OCI image format, ONBUILD triggers will be ignored. Must use `docker` format".to_string(),
            "Shell" => "SHELL is not persisted in the OCI image format and will not be present in the saved image. Must use `docker` format to persist it".to_string(),
            "Domainname" => "DOMAINNAME is not supported for OCI image format, domainname will be ignored. Must use `docker` format".to_string(),
            "Hostname" => "HOSTNAME is not supported for OCI image format, hostname will be ignored. Must use `docker` format".to_string(),
            "comment" => "COMMENT is not supported for OCI image format, comment will be ignored. Must use `docker` format".to_string(),
            other => format!("{other} is not supported for OCI image format and will be ignored. Must use `docker` format"),
        }
    }
}

/// Docker-only top-level fields that say nothing worth a warning (buildah writes them itself).
const SILENT_TOP: &[&str] = &[
    "container",
    "container_config",
    "docker_version",
    "parent",
    "id",
    "size",
];

/// The OCI image config bytes, and the Docker-only fields that were set and dropped.
pub fn to_oci(cfg: &ImageConfig) -> (Vec<u8>, Vec<Dropped>) {
    let mut c = cfg.clone();
    let mut dropped = Vec::new();
    let mut drop = |name: &str, set: bool| {
        if set {
            dropped.push(Dropped {
                field: name.to_string(),
            });
        }
    };
    drop(
        "Hostname",
        c.config.hostname.take().is_some_and(|h| !h.is_empty()),
    );
    drop(
        "Domainname",
        c.config.domainname.take().is_some_and(|h| !h.is_empty()),
    );
    drop("Healthcheck", c.config.healthcheck.take().is_some());
    drop(
        "OnBuild",
        c.config.on_build.take().is_some_and(|v| !v.is_empty()),
    );
    drop(
        "Shell",
        c.config.shell.take().is_some_and(|v| !v.is_empty()),
    );
    for (k, v) in std::mem::take(&mut c.config.other) {
        // AttachStdin/Tty/Image/… are Docker run-time bookkeeping: only warn when they carry a value.
        let meaningful = !(v.is_null()
            || v == false
            || v == ""
            || v.as_array().is_some_and(|a| a.is_empty())
            || v.as_object().is_some_and(|o| o.is_empty()));
        drop(
            &k,
            meaningful
                && !matches!(
                    k.as_str(),
                    "AttachStdin"
                        | "AttachStdout"
                        | "AttachStderr"
                        | "Tty"
                        | "OpenStdin"
                        | "StdinOnce"
                        | "Image"
                ),
        );
    }
    for (k, v) in std::mem::take(&mut c.other) {
        let meaningful = !(v.is_null() || v == "");
        drop(&k, meaningful && !SILENT_TOP.contains(&k.as_str()));
    }
    (to_json(&c), dropped)
}

/// The Docker v2s2 image config bytes (every field kept).
pub fn to_docker(cfg: &ImageConfig) -> Vec<u8> {
    to_json(cfg)
}

/// The image ID of a config: the hex of its sha256.
pub fn image_id(config_bytes: &[u8]) -> String {
    Digest::of(config_bytes).hex().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::config::{HealthConfig, History};

    fn sample() -> ImageConfig {
        let mut c = ImageConfig::scratch();
        c.architecture = "amd64".into();
        c.created = Some("1970-01-01T00:00:00Z".into());
        c.config.env = Some(vec!["PATH=/bin".into()]);
        c.config.labels = Some(
            [
                ("z".to_string(), "1".to_string()),
                ("a".to_string(), "2".to_string()),
            ]
            .into(),
        );
        c.config.healthcheck = Some(HealthConfig {
            test: Some(vec!["NONE".into()]),
            ..Default::default()
        });
        c.config.on_build = Some(vec!["RUN true".into()]);
        c.config.shell = Some(vec!["/bin/bash".into(), "-c".into()]);
        c.config.domainname = Some("example.com".into());
        c.other.insert("docker_version".into(), "20".into());
        c.history.push(History {
            created_by: Some("/bin/sh".into()),
            ..Default::default()
        });
        c
    }

    #[test]
    fn oci_drops_docker_fields_and_reports_them() {
        let (bytes, dropped) = to_oci(&sample());
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        for f in ["Healthcheck", "OnBuild", "Shell", "Domainname"] {
            assert!(v["config"].get(f).is_none(), "{f} kept");
            assert!(dropped.iter().any(|d| d.field == f), "{f} not reported");
        }
        assert!(v.get("docker_version").is_none());
        assert!(!dropped.iter().any(|d| d.field == "docker_version"));
        assert_eq!(v["config"]["Env"][0], "PATH=/bin");
        assert!(dropped
            .iter()
            .find(|d| d.field == "Healthcheck")
            .unwrap()
            .warning()
            .starts_with("HEALTHCHECK is not supported for OCI image format"));
    }

    #[test]
    fn docker_keeps_everything() {
        let v: serde_json::Value = serde_json::from_slice(&to_docker(&sample())).unwrap();
        assert_eq!(v["config"]["Healthcheck"]["Test"][0], "NONE");
        assert_eq!(v["config"]["OnBuild"][0], "RUN true");
        assert_eq!(v["config"]["Shell"][0], "/bin/bash");
        assert_eq!(v["docker_version"], "20");
    }

    #[test]
    fn serialisation_is_deterministic_and_compact() {
        let a = to_oci(&sample()).0;
        let b = to_oci(&sample().clone()).0;
        assert_eq!(a, b);
        assert!(!a.contains(&b'\n'));
        let s = String::from_utf8(a.clone()).unwrap();
        // sorted label keys, fixed field order
        assert!(s.find("\"a\":\"2\"").unwrap() < s.find("\"z\":\"1\"").unwrap());
        assert!(s.find("\"created\"").unwrap() < s.find("\"architecture\"").unwrap());
        assert_eq!(image_id(&a), Digest::of(&a).hex());
        let (clean, dropped) = to_oci(&ImageConfig::scratch());
        assert!(dropped.is_empty());
        assert_ne!(image_id(&clean), image_id(&a));
    }
}
