//! Manifest, index and descriptor types (OCI and Docker v2s2), media-type constants, and a
//! strict parser that refuses ambiguous documents (security.md D36: duplicate JSON keys,
//! a `mediaType` that disagrees with the declared type, a document that is both a manifest
//! and an index).
//!
//! Maps are `BTreeMap` and unknown fields are kept in `other`, so a parsed document
//! re-serialises deterministically without losing anything.
use std::collections::{BTreeMap, HashSet};
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use super::digest::Digest;
use crate::error::{Error, Result};

/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// OCI image config.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// OCI uncompressed layer.
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
/// OCI gzip layer.
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// OCI zstd layer.
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
/// OCI non-distributable uncompressed layer (deprecated, still read).
pub const OCI_LAYER_NONDIST_TAR: &str = "application/vnd.oci.image.layer.nondistributable.v1.tar";
/// OCI non-distributable gzip layer (deprecated, still read).
pub const OCI_LAYER_NONDIST_GZIP: &str =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
/// OCI non-distributable zstd layer (deprecated, still read).
pub const OCI_LAYER_NONDIST_ZSTD: &str =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd";
/// Docker v2 schema 2 manifest.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker v2 schema 2 manifest list.
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker v2 schema 1 (signed) manifest; recognised only to be refused.
pub const DOCKER_MANIFEST_V1_SIGNED: &str =
    "application/vnd.docker.distribution.manifest.v1+prettyjws";
/// Docker image config.
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// Docker gzip layer.
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// Docker uncompressed layer (as buildah writes before compression, and docker-archive).
pub const DOCKER_LAYER_TAR: &str = "application/vnd.docker.image.rootfs.diff.tar";
/// Docker foreign (non-distributable) gzip layer.
pub const DOCKER_LAYER_FOREIGN_GZIP: &str =
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
/// Annotation naming an image in an OCI layout's `index.json`.
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";
/// Annotation with the creation time.
pub const ANNOTATION_CREATED: &str = "org.opencontainers.image.created";
/// Annotation with the base image's manifest digest.
pub const ANNOTATION_BASE_DIGEST: &str = "org.opencontainers.image.base.digest";
/// Annotation with the base image's name.
pub const ANNOTATION_BASE_NAME: &str = "org.opencontainers.image.base.name";

/// The most a manifest, index or config may weigh when read (D37).
pub const MAX_MANIFEST_SIZE: u64 = 4 << 20;

/// A content descriptor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// The media type of the referenced content.
    pub media_type: String,
    /// Its digest.
    pub digest: Digest,
    /// Its size in bytes (`-1` = not known yet, inside the copy pipeline only).
    pub size: i64,
    /// Alternate download locations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urls: Option<Vec<String>>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    /// Platform (index entries).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    /// Unknown fields (`artifactType`, `data`, …), kept.
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

impl Descriptor {
    /// A plain descriptor.
    pub fn new(media_type: &str, digest: Digest, size: i64) -> Descriptor {
        Descriptor {
            media_type: media_type.to_string(),
            digest,
            size,
            urls: None,
            annotations: None,
            platform: None,
            other: BTreeMap::new(),
        }
    }

    /// The value of one annotation.
    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations.as_ref()?.get(key).map(String::as_str)
    }
}

/// A platform in an index entry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Platform {
    /// CPU architecture (`amd64`).
    pub architecture: String,
    /// Operating system (`linux`).
    pub os: String,
    /// OS version.
    #[serde(
        default,
        rename = "os.version",
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
    /// OS features.
    #[serde(
        default,
        rename = "os.features",
        skip_serializing_if = "Option::is_none"
    )]
    pub os_features: Option<Vec<String>>,
    /// Variant (`v8`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// Unknown fields, kept.
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

/// An image manifest: OCI (`application/vnd.oci.image.manifest.v1+json`) and Docker v2s2
/// (`application/vnd.docker.distribution.manifest.v2+json`) share this shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageManifest {
    /// Always 2.
    pub schema_version: i64,
    /// The manifest's media type (optional in OCI, required in Docker).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// OCI 1.1 artifact type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// The config blob.
    pub config: Descriptor,
    /// The layers, bottom first.
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    /// OCI 1.1 subject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    /// Unknown fields, kept.
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

/// The OCI manifest type.
pub type OciManifest = ImageManifest;
/// The Docker v2s2 manifest type (same shape, `mediaType` required).
pub type DockerManifest = ImageManifest;

/// An index of manifests: OCI image index and Docker manifest list share this shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageIndex {
    /// Always 2.
    pub schema_version: i64,
    /// The index's media type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// OCI 1.1 artifact type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// The manifests (`null`, as buildah writes an empty list, reads as none).
    #[serde(default, deserialize_with = "crate::store::json::nullable")]
    pub manifests: Vec<Descriptor>,
    /// OCI 1.1 subject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    /// Unknown fields, kept.
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

/// The OCI index type.
pub type OciIndex = ImageIndex;
/// The Docker manifest list type.
pub type DockerManifestList = ImageIndex;

impl ImageIndex {
    /// An empty OCI index.
    pub fn new_oci() -> ImageIndex {
        ImageIndex {
            schema_version: 2,
            media_type: Some(OCI_INDEX.to_string()),
            artifact_type: None,
            manifests: Vec::new(),
            subject: None,
            annotations: None,
            other: BTreeMap::new(),
        }
    }
}

/// A parsed manifest-like document.
#[derive(Debug, Clone, PartialEq)]
pub enum Manifest {
    /// OCI image manifest.
    Oci(ImageManifest),
    /// Docker v2s2 manifest.
    Docker(ImageManifest),
    /// OCI image index.
    OciIndex(ImageIndex),
    /// Docker manifest list.
    DockerList(ImageIndex),
}

impl Manifest {
    /// The media type of the document.
    pub fn media_type(&self) -> &'static str {
        match self {
            Manifest::Oci(_) => OCI_MANIFEST,
            Manifest::Docker(_) => DOCKER_MANIFEST,
            Manifest::OciIndex(_) => OCI_INDEX,
            Manifest::DockerList(_) => DOCKER_MANIFEST_LIST,
        }
    }
}

/// Whether `mt` names an index or manifest list.
pub fn is_index_type(mt: &str) -> bool {
    mt == OCI_INDEX || mt == DOCKER_MANIFEST_LIST
}

/// Whether `mt` is a layer media type we can unpack.
pub fn is_layer_type(mt: &str) -> bool {
    matches!(
        mt,
        OCI_LAYER_TAR
            | OCI_LAYER_GZIP
            | OCI_LAYER_ZSTD
            | OCI_LAYER_NONDIST_TAR
            | OCI_LAYER_NONDIST_GZIP
            | OCI_LAYER_NONDIST_ZSTD
            | DOCKER_LAYER_GZIP
            | DOCKER_LAYER_TAR
            | DOCKER_LAYER_FOREIGN_GZIP
    )
}

/// Check that a JSON document has no duplicate keys in any object (at any depth).
pub fn check_no_duplicate_keys(data: &[u8]) -> std::result::Result<(), serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(data);
    DupCheck.deserialize(&mut de)?;
    de.end()
}

/// A visitor that walks any JSON value and fails on a repeated key.
#[derive(Clone, Copy)]
struct DupCheck;

impl<'de> DeserializeSeed<'de> for DupCheck {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for DupCheck {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> std::result::Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> std::result::Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> std::result::Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> std::result::Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> std::result::Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> std::result::Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<(), A::Error> {
        while seq.next_element_seed(DupCheck)?.is_some() {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<(), A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key.clone()) {
                return Err(de::Error::custom(format!("duplicate key {key:?}")));
            }
            map.next_value_seed(DupCheck)?;
        }
        Ok(())
    }
}

fn bad(what: impl Into<String>) -> Error {
    Error::invalid(what.into())
}

fn json_err(e: serde_json::Error) -> Error {
    Error::Json {
        op: "parsing".into(),
        path: "manifest".into(),
        source: e,
    }
}

/// Parse a manifest, index or manifest list strictly. `declared` is the media type the
/// document was announced with (index entry, Content-Type, a transport's own record); when
/// both it and the document's `mediaType` are set they must agree. Documents with duplicate
/// keys, with both `manifests` and `config`/`layers`, or of an unknown type are refused.
pub fn parse_manifest(data: &[u8], declared: Option<&str>) -> Result<Manifest> {
    if data.len() as u64 > MAX_MANIFEST_SIZE {
        return Err(bad(format!(
            "manifest is {} bytes, more than the limit of {MAX_MANIFEST_SIZE}",
            data.len()
        )));
    }
    check_no_duplicate_keys(data).map_err(json_err)?;
    let value: serde_json::Value = serde_json::from_slice(data).map_err(json_err)?;
    let obj = value
        .as_object()
        .ok_or_else(|| bad("manifest is not a JSON object"))?;
    let field_mt = match obj.get("mediaType") {
        None => None,
        Some(serde_json::Value::String(s)) => Some(s.as_str()),
        Some(_) => return Err(bad("manifest mediaType is not a string")),
    };
    let declared = declared.filter(|d| !d.is_empty());
    if let (Some(f), Some(d)) = (field_mt, declared) {
        if f != d {
            return Err(bad(format!(
                "manifest has mediaType {f:?} but was declared as {d:?}"
            )));
        }
    }
    let has_manifests = obj.contains_key("manifests");
    let has_image_parts = obj.contains_key("config") || obj.contains_key("layers");
    if has_manifests && has_image_parts {
        return Err(bad(
            "ambiguous manifest: it has both \"manifests\" and \"config\"/\"layers\"",
        ));
    }
    if obj.get("schemaVersion").and_then(|v| v.as_i64()) == Some(1) {
        return Err(bad("Docker schema 1 manifests are not supported"));
    }
    let mt = match field_mt.or(declared) {
        Some(mt) => mt.to_string(),
        // OCI allows mediaType to be absent; guess from the structure.
        None if has_manifests => OCI_INDEX.to_string(),
        None if obj.contains_key("config") => OCI_MANIFEST.to_string(),
        None => {
            return Err(bad(
                "unrecognised manifest document: no mediaType, config or manifests",
            ))
        }
    };
    if obj.get("schemaVersion").and_then(|v| v.as_i64()) != Some(2) {
        if mt == DOCKER_MANIFEST_V1_SIGNED
            || obj.get("schemaVersion").and_then(|v| v.as_i64()) == Some(1)
        {
            return Err(bad("Docker schema 1 manifests are not supported"));
        }
        return Err(bad("manifest schemaVersion is not 2"));
    }
    match mt.as_str() {
        OCI_MANIFEST | DOCKER_MANIFEST => {
            if has_manifests {
                return Err(bad(format!(
                    "manifest of type {mt} has a \"manifests\" field"
                )));
            }
            let m: ImageManifest = serde_json::from_value(value).map_err(json_err)?;
            if mt == DOCKER_MANIFEST {
                if m.media_type.is_none() {
                    return Err(bad("Docker manifest lacks mediaType"));
                }
                Ok(Manifest::Docker(m))
            } else {
                Ok(Manifest::Oci(m))
            }
        }
        OCI_INDEX | DOCKER_MANIFEST_LIST => {
            if has_image_parts {
                return Err(bad(format!(
                    "index of type {mt} has \"config\" or \"layers\""
                )));
            }
            let i: ImageIndex = serde_json::from_value(value).map_err(json_err)?;
            if mt == DOCKER_MANIFEST_LIST {
                Ok(Manifest::DockerList(i))
            } else {
                Ok(Manifest::OciIndex(i))
            }
        }
        DOCKER_MANIFEST_V1_SIGNED | "application/vnd.docker.distribution.manifest.v1+json" => {
            Err(bad("Docker schema 1 manifests are not supported"))
        }
        other => Err(bad(format!("unsupported manifest media type {other:?}"))),
    }
}

/// Serialise compactly (the form written to disk and hashed).
pub fn to_json<T: Serialize>(v: &T) -> Vec<u8> {
    // Serialising these types cannot fail: all maps have string keys.
    serde_json::to_vec(v).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(c: char) -> String {
        format!("sha256:{}", c.to_string().repeat(64))
    }

    fn oci_manifest_json() -> String {
        format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"{OCI_CONFIG}","digest":"{}","size":2}},"layers":[{{"mediaType":"{OCI_LAYER_GZIP}","digest":"{}","size":3,"x-extra":1}}],"annotations":{{"a":"b"}},"x-top":true}}"#,
            d('a'),
            d('b')
        )
    }

    #[test]
    fn parse_and_roundtrip_keeps_unknown_fields() {
        let j = oci_manifest_json();
        let m = parse_manifest(j.as_bytes(), None).unwrap();
        let Manifest::Oci(m) = m else {
            panic!("not oci")
        };
        assert_eq!(m.layers[0].other["x-extra"], 1);
        assert_eq!(m.other["x-top"], true);
        let back: serde_json::Value = serde_json::from_slice(&to_json(&m)).unwrap();
        let orig: serde_json::Value = serde_json::from_str(&j).unwrap();
        assert_eq!(back, orig);
    }

    #[test]
    fn rejects_ambiguous_documents() {
        let cfg = format!(
            r#"{{"mediaType":"{OCI_CONFIG}","digest":"{}","size":2}}"#,
            d('a')
        );
        let cases: Vec<(String, Option<&str>, &str)> = vec![
            // duplicate top-level key
            (
                format!(r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{cfg},"config":{cfg},"layers":[]}}"#),
                None,
                "duplicate",
            ),
            // duplicate nested key
            (
                format!(r#"{{"schemaVersion":2,"config":{cfg},"layers":[],"annotations":{{"a":"1","a":"2"}}}}"#),
                None,
                "duplicate",
            ),
            // both manifests and layers
            (format!(r#"{{"schemaVersion":2,"config":{cfg},"layers":[],"manifests":[]}}"#), None, "ambiguous"),
            // declared type differs from the field
            (
                format!(r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{cfg},"layers":[]}}"#),
                Some(DOCKER_MANIFEST),
                "declared",
            ),
            // an index declared as a manifest, mediaType absent
            (r#"{"schemaVersion":2,"manifests":[]}"#.to_string(), Some(OCI_MANIFEST), "manifests"),
            // schema 1
            (r#"{"schemaVersion":1,"name":"x"}"#.to_string(), None, "schema 1"),
            // Docker manifest without mediaType
            (format!(r#"{{"schemaVersion":2,"config":{cfg},"layers":[]}}"#), Some(DOCKER_MANIFEST), "lacks"),
            // malformed digest
            (
                r#"{"schemaVersion":2,"config":{"mediaType":"x","digest":"sha256:../../x","size":1},"layers":[]}"#.to_string(),
                None,
                "parsing",
            ),
        ];
        for (doc, declared, want) in cases {
            let err = parse_manifest(doc.as_bytes(), declared).unwrap_err();
            let msg = format!(
                "{err} {:?}",
                std::error::Error::source(&err).map(|s| s.to_string())
            );
            assert!(msg.contains(want), "{doc}: got {msg}, want {want}");
        }
    }

    #[test]
    fn guesses_types_without_media_type() {
        let cfg = format!(
            r#"{{"mediaType":"{OCI_CONFIG}","digest":"{}","size":2}}"#,
            d('a')
        );
        let m = parse_manifest(
            format!(r#"{{"schemaVersion":2,"config":{cfg},"layers":[]}}"#).as_bytes(),
            None,
        )
        .unwrap();
        assert_eq!(m.media_type(), OCI_MANIFEST);
        let i = parse_manifest(br#"{"schemaVersion":2,"manifests":[]}"#, None).unwrap();
        assert_eq!(i.media_type(), OCI_INDEX);
        let l = parse_manifest(
            format!(r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST_LIST}","manifests":[]}}"#)
                .as_bytes(),
            Some(DOCKER_MANIFEST_LIST),
        )
        .unwrap();
        assert_eq!(l.media_type(), DOCKER_MANIFEST_LIST);
    }

    #[test]
    fn dup_check_accepts_same_key_in_sibling_objects() {
        check_no_duplicate_keys(br#"{"a":{"x":1},"b":{"x":2},"c":[{"x":1},{"x":2}]}"#).unwrap();
        assert!(check_no_duplicate_keys(br#"[{"x":1,"x":1}]"#).is_err());
    }

    /// Found by the `manifest` fuzz target (fuzz/, docs/security.md "Fuzzing"): an unknown
    /// field holding a float came back one digit off (`8.888888888888889e43` written as
    /// `8.88888888888889e43`) when serde_json parsed floats without `float_roundtrip`, so a
    /// manifest or config hod rewrites would change bytes, and digest, it had no reason to.
    #[test]
    fn unknown_float_fields_survive_a_round_trip() {
        let doc = br#"{"schemaVersion":2,"manifests":[],"x":88888888888888888888888888888888888888888882,"y":0.1,"z":1e-300}"#;
        let m = parse_manifest(doc, None).unwrap();
        let Manifest::OciIndex(i) = &m else {
            panic!("{m:?}")
        };
        let again = parse_manifest(&to_json(i), Some(OCI_INDEX)).unwrap();
        assert_eq!(again, m);
        assert_eq!(
            i.other["x"].as_f64(),
            Some(88888888888888888888888888888888888888888882.0)
        );
    }
}
