//! `hod inspect`: the state of a working container or an image, as JSON or a Go template.
use std::io::IsTerminal;

use builder::image::ImageConfig;
use builder::{Builder, Store};
use serde_json::{json, Map, Value};

use crate::ctx::Ctx;
use crate::output;
use crate::template::Template;

/// `hod inspect [options] NAME`
#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// The container or image.
    pub name: String,
    /// Format the output with a Go template (e.g. '{{.FromImage}}', '{{.OCIv1.Config.Env}}').
    #[arg(short, long, value_name = "TEMPLATE")]
    pub format: Option<String>,
    /// What to inspect: container or image (default: container, falling back to image).
    #[arg(short = 't', long = "type", value_name = "TYPE")]
    pub kind: Option<String>,
}

/// The `Type` inspect reports: buildah's, so scripts that check it keep working (the state
/// file itself is tagged `builder::builder::BUILDER_TYPE`).
pub const INSPECT_TYPE: &str = "buildah 0.0.1";

/// Fields of the OCI image config's `config` (the rest are Docker-only).
const OCI_CONFIG_FIELDS: &[&str] = &[
    "User",
    "ExposedPorts",
    "Env",
    "Entrypoint",
    "Cmd",
    "Volumes",
    "WorkingDir",
    "Labels",
    "StopSignal",
    "ArgsEscaped",
];
/// Top-level fields of the OCI image config.
const OCI_TOP_FIELDS: &[&str] = &[
    "created",
    "author",
    "architecture",
    "variant",
    "os",
    "os.version",
    "os.features",
    "config",
    "rootfs",
    "history",
];

/// The OCI projection of the canonical config (Docker-only fields dropped).
pub fn oci_view(c: &ImageConfig) -> Value {
    let mut v = serde_json::to_value(c).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut v {
        m.retain(|k, _| OCI_TOP_FIELDS.contains(&k.as_str()));
        if let Some(Value::Object(cfg)) = m.get_mut("config") {
            cfg.retain(|k, _| OCI_CONFIG_FIELDS.contains(&k.as_str()));
        }
    }
    v
}

/// The Docker projection (everything kept).
/// As buildah's, `container_config` is the image's `config` when the image has none of its
/// own (an OCI image): `{{.Docker.ContainerConfig.Env}}` reads the environment either way.
pub fn docker_view(c: &ImageConfig) -> Value {
    let mut v = serde_json::to_value(c).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut v {
        if !m.contains_key("container_config") {
            if let Some(cfg) = m.get("config").cloned() {
                m.insert("container_config".into(), cfg);
            }
        }
    }
    v
}

fn base_info(c: &ImageConfig) -> Map<String, Value> {
    let mut m = Map::new();
    let oci = oci_view(c);
    m.insert(
        "Config".into(),
        Value::String(serde_json::to_string(&oci).unwrap_or_default()),
    );
    m.insert("OCIv1".into(), oci);
    m.insert("Docker".into(), docker_view(c));
    m.insert(
        "History".into(),
        serde_json::to_value(&c.history).unwrap_or(Value::Array(Vec::new())),
    );
    m
}

/// buildah's `BuilderInfo` for a working container.
pub fn container_info(store: &Store, b: &Builder) -> Value {
    let s = &b.state;
    let mut m = Map::new();
    m.insert("Type".into(), json!(INSPECT_TYPE));
    m.insert("FromImage".into(), json!(s.from_image));
    m.insert("FromImageID".into(), json!(s.from_image_id));
    m.insert("FromImageDigest".into(), json!(s.from_image_digest));
    m.insert(
        "GroupAdd".into(),
        match s.run_defaults.group_add.as_slice() {
            [] => Value::Null,
            g => json!(g),
        },
    );
    // The base image's manifest, as buildah keeps it.
    let manifest = if s.from_image_id.is_empty() {
        String::new()
    } else {
        store
            .image_big_data(&s.from_image_id, "manifest")
            .map(|m| String::from_utf8_lossy(&m).into_owned())
            .unwrap_or_default()
    };
    m.insert("Manifest".into(), json!(manifest));
    m.insert("Container".into(), json!(s.container));
    m.insert("ContainerID".into(), json!(b.record.id));
    m.insert("MountPoint".into(), json!(s.mount_point));
    m.insert("ProcessLabel".into(), json!(""));
    m.insert("MountLabel".into(), json!(""));
    m.insert("ImageAnnotations".into(), json!(s.annotations));
    m.insert("ImageCreatedBy".into(), json!(s.created_by));
    m.insert("DefaultMountsFilePath".into(), json!(""));
    m.insert("Isolation".into(), json!(s.isolation.as_str()));
    // The set later runs start from, as buildah shows it.
    let sec = &s.run_defaults.security;
    m.insert(
        "Capabilities".into(),
        builder::run::spec::capability_set(
            sec.base_capabilities.as_deref(),
            &sec.cap_add,
            &sec.cap_drop,
        )
        .map(|c| json!(c))
        .unwrap_or(Value::Null),
    );
    m.insert(
        "Format".into(),
        json!(match s.format {
            builder::builder::ImageFormat::Oci => "application/vnd.oci.image.manifest.v1+json",
            builder::builder::ImageFormat::Docker =>
                "application/vnd.docker.distribution.manifest.v2+json",
        }),
    );
    m.extend(base_info(&s.config));
    Value::Object(m)
}

/// buildah's `BuilderInfo` for an image (no container).
pub fn image_info(store: &Store, name: &str) -> anyhow::Result<Value> {
    // The one lookup of the query layer (the same rules as images and rmi).
    let record = builder::images::ImageIndex::load(store)?.get(name)?.clone();
    let platform = builder::options::Platform::default();
    let base = builder::from::read_image(store, record.clone(), &platform)?;
    let manifest = store
        .image_big_data(&record.id, "manifest")
        .ok()
        .map(|m| String::from_utf8_lossy(&m).into_owned())
        .unwrap_or_default();
    let mut m = Map::new();
    m.insert("Type".into(), json!(INSPECT_TYPE));
    m.insert(
        "FromImage".into(),
        json!(record
            .names
            .first()
            .cloned()
            .unwrap_or_else(|| name.to_string())),
    );
    m.insert("FromImageID".into(), json!(record.id));
    m.insert(
        "FromImageDigest".into(),
        json!(base
            .manifest_digest
            .as_ref()
            .map(|d| d.to_string())
            .unwrap_or_default()),
    );
    m.insert("GroupAdd".into(), Value::Null);
    m.insert("Manifest".into(), json!(manifest));
    m.insert("Container".into(), json!(""));
    m.insert("ContainerID".into(), json!(""));
    m.insert("MountPoint".into(), json!(""));
    m.insert("ProcessLabel".into(), json!(""));
    m.insert("MountLabel".into(), json!(""));
    let annotations = serde_json::from_str::<Value>(&manifest)
        .ok()
        .and_then(|v| v.get("annotations").cloned())
        .unwrap_or_else(|| json!({}));
    m.insert("ImageAnnotations".into(), annotations);
    m.insert("ImageCreatedBy".into(), json!(""));
    m.insert("DefaultMountsFilePath".into(), json!(""));
    m.insert("Isolation".into(), json!(""));
    m.insert("Capabilities".into(), Value::Null);
    m.extend(base_info(&base.config));
    Ok(Value::Object(m))
}

/// `BuilderInfo`'s field order in buildah, for the JSON output.
const FIELD_ORDER: &[&str] = &[
    "Type",
    "FromImage",
    "FromImageID",
    "FromImageDigest",
    "GroupAdd",
    "Config",
    "Manifest",
    "Container",
    "ContainerID",
    "MountPoint",
    "ProcessLabel",
    "MountLabel",
    "ImageAnnotations",
    "ImageCreatedBy",
    "OCIv1",
    "Docker",
    "DefaultMountsFilePath",
    "Isolation",
    "NamespaceOptions",
    "Capabilities",
    "ConfigureNetwork",
    "IDMappingOptions",
    "History",
    "Devices",
    "DeviceSpecs",
    "CDIConfigDir",
];

/// A JSON object serialised with buildah's top-level field order (others after, sorted).
struct Ordered<'a>(&'a Map<String, Value>);

impl serde::Serialize for Ordered<'_> {
    fn serialize<S: serde::Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = ser.serialize_map(Some(self.0.len()))?;
        for k in FIELD_ORDER {
            if let Some(v) = self.0.get(*k) {
                m.serialize_entry(k, v)?;
            }
        }
        for (k, v) in self
            .0
            .iter()
            .filter(|(k, _)| !FIELD_ORDER.contains(&k.as_str()))
        {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

/// Go's `json.Encoder` HTML escaping.
fn escape_html(s: &str) -> String {
    s.replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

/// The string fields of Go's `docker.V2Image` that its JSON omits when empty: a template
/// reads them as `""` (Go's zero value), not `<no value>` (`{{.Docker.Parent}}`).
const DOCKER_STRING_FIELDS: &[&str] = &[
    "id",
    "parent",
    "comment",
    "container",
    "docker_version",
    "author",
    "variant",
];

/// `info` as a Go template sees buildah's structs: absent zero-valued fields filled in.
fn go_zero_values(mut info: Value) -> Value {
    if let Some(Value::Object(d)) = info.get_mut("Docker") {
        for f in DOCKER_STRING_FIELDS {
            d.entry(f.to_string())
                .or_insert_with(|| Value::String(String::new()));
        }
    }
    info
}

/// Inspect.
pub fn run(a: InspectArgs, ctx: &Ctx) -> anyhow::Result<i32> {
    let store = ctx.store()?;
    let info = match a.kind.as_deref() {
        None => match Builder::open(&store, &a.name) {
            Ok(b) => container_info(&store, &b),
            Err(_) => image_info(&store, &a.name)?,
        },
        Some("container") => container_info(&store, &super::open_builder(&store, &a.name)?),
        Some("image") => image_info(&store, &a.name)?,
        Some(_) => anyhow::bail!("the only recognized types are \"container\" and \"image\""),
    };
    let tty = std::io::stdout().is_terminal();
    if let Some(fmt) = &a.format {
        if !(fmt.contains("{{") && fmt[fmt.find("{{").unwrap_or(0)..].contains("}}")) {
            anyhow::bail!("invalid format provided: {fmt}");
        }
        let t = Template::parse(fmt).map_err(|e| anyhow::anyhow!("template parsing error: {e}"))?;
        let mut out = t.render(&go_zero_values(info))?;
        if tty {
            out.push('\n');
        }
        output::print(&out)?;
        return Ok(0);
    }
    let text = match &info {
        Value::Object(m) => output::json_pretty(&Ordered(m))?,
        other => output::json_pretty(other)?,
    };
    output::println(&if tty { text } else { escape_html(&text) })?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oci_view_drops_docker_only_fields() {
        let mut c = ImageConfig::scratch();
        c.config.hostname = Some("h".into());
        c.config.env = Some(vec!["A=1".into()]);
        c.other.insert("docker_version".into(), json!("20"));
        let v = oci_view(&c);
        assert!(v["config"].get("Hostname").is_none());
        assert!(v.get("docker_version").is_none());
        assert_eq!(v["config"]["Env"][0], "A=1");
        let d = docker_view(&c);
        assert_eq!(d["config"]["Hostname"], "h");
        assert_eq!(d["container_config"]["Env"][0], "A=1", "OCI image: config");
        c.other
            .insert("container_config".into(), json!({"Env": ["B=2"]}));
        assert_eq!(docker_view(&c)["container_config"]["Env"][0], "B=2");
    }

    #[test]
    fn template_over_info() {
        let mut c = ImageConfig::scratch();
        c.config.entrypoint = Some(vec![
            "/bin/sh".into(),
            "-c".into(),
            "/usr/bin/notashell".into(),
        ]);
        let info = Value::Object(base_info(&c));
        let t = Template::parse(
            "{{ .OCIv1.Config.Entrypoint }}|{{ .Docker.Config.Entrypoint }}|{{.OCIv1.Config.Cmd}}",
        )
        .unwrap();
        assert_eq!(
            t.render(&info).unwrap(),
            "[/bin/sh -c /usr/bin/notashell]|[/bin/sh -c /usr/bin/notashell]|[]"
        );
    }

    #[test]
    fn json_keeps_buildahs_field_order() {
        let mut m = Map::new();
        for k in ["Zeta", "OCIv1", "Type", "Container", "FromImage"] {
            m.insert(k.to_string(), json!(1));
        }
        let text = output::json_pretty(&Ordered(&m)).unwrap();
        let keys: Vec<&str> = text
            .lines()
            .filter_map(|l| l.trim().strip_prefix('"')?.split('"').next())
            .collect();
        assert_eq!(
            keys,
            vec!["Type", "FromImage", "Container", "OCIv1", "Zeta"]
        );
    }

    #[test]
    fn html_escaping() {
        assert_eq!(
            escape_html(r#"{"a":"<&>"}"#),
            r#"{"a":"\u003c\u0026\u003e"}"#
        );
    }
}

#[cfg(test)]
mod config_to_template {
    use super::*;
    use builder::builder::{BuilderState, ImageFormat};
    use builder::config::{apply, ConfigChanges};

    /// `hod config` flags as the bats suite uses them, through inspect's templates.
    #[test]
    fn config_settings_show_in_inspect() {
        let mut state = BuilderState {
            config: ImageConfig::scratch(),
            format: ImageFormat::Docker,
            ..Default::default()
        };
        let mut ch = ConfigChanges::default();
        ch.author = Some("TESTAUTHOR".into());
        ch.user = Some("likes:things".into());
        ch.ports = vec!["12345/tcp".into()];
        ch.env = vec!["VARIABLE=VALUE1,VALUE2".into(), "foo=bar".into()];
        ch.labels = vec!["LABEL=VALUE".into(), "test=ok".into()];
        ch.annotations = vec!["ANNOTATION=VALUE1,VALUE2".into()];
        ch.volumes = vec!["/VOLUME".into()];
        ch.shell = Some("/bin/bash -c".into());
        ch.comment = Some("a comment".into());
        ch.domainname = Some("mydomain.local".into());
        ch.hostname = Some("cleverhostname".into());
        apply(&mut state, &ch, &|_| None).unwrap();
        let mut info = Map::new();
        info.insert("ImageAnnotations".into(), json!(state.annotations));
        info.extend(base_info(&state.config));
        let info = Value::Object(info);
        let cases = [
            ("{{.OCIv1.Author}}", "TESTAUTHOR"),
            ("{{.OCIv1.Config.User}}", "likes:things"),
            ("{{.OCIv1.Config.ExposedPorts}}", "map[12345/tcp:{}]"),
            ("{{.OCIv1.Config.Env}}", "[VARIABLE=VALUE1,VALUE2 foo=bar]"),
            (
                "{{.OCIv1.Config.Labels.LABEL}} {{.OCIv1.Config.Labels.test}}",
                "VALUE ok",
            ),
            ("{{.OCIv1.Config.Volumes}}", "map[/VOLUME:{}]"),
            ("{{.Docker.Config.Shell}}", "[/bin/bash -c]"),
            (
                "{{.Docker.Config.Domainname}} {{.Docker.Config.Hostname}}",
                "mydomain.local cleverhostname",
            ),
            ("{{.Docker.Comment}}", "a comment"),
            ("{{.ImageAnnotations.ANNOTATION}}", "VALUE1,VALUE2"),
            ("{{.OCIv1.Config.Shell}}", "[]"),
        ];
        for (t, want) in cases {
            assert_eq!(
                Template::parse(t).unwrap().render(&info).unwrap(),
                want,
                "{t}"
            );
        }
        let mut ch = ConfigChanges::default();
        ch.labels = vec!["-".into()];
        ch.env = vec!["-".into()];
        ch.volumes = vec!["/VOLUME-".into()];
        apply(&mut state, &ch, &|_| None).unwrap();
        let info = Value::Object(base_info(&state.config));
        let t = Template::parse(
            "{{len .OCIv1.Config.Labels}} {{len .OCIv1.Config.Env}} {{.OCIv1.Config.Volumes}}",
        )
        .unwrap();
        assert_eq!(t.render(&info).unwrap(), "0 0 map[]");
    }
}
