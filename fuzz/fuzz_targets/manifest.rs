//! Fuzz target: the manifest parser (`builder::image::manifest::parse_manifest`) on OCI
//! manifests and indexes, Docker v2s2 manifests and manifest lists, and the image config
//! (OCI/Docker) with its conversions.
//!
//! The first byte picks the declared media type (as an index entry, a Content-Type or a
//! transport's record would announce it); the rest is the document. Invariants: no panic;
//! a document that parses serialises back to JSON that parses to the same value; a config
//! that parses converts to OCI and Docker form without panicking.
#![no_main]

use builder::image::manifest::{self, parse_manifest, Manifest};
use builder::image::{convert, Digest, ImageConfig};
use libfuzzer_sys::fuzz_target;

const DECLARED: &[Option<&str>] = &[
    None,
    Some(manifest::OCI_MANIFEST),
    Some(manifest::OCI_INDEX),
    Some(manifest::DOCKER_MANIFEST),
    Some(manifest::DOCKER_MANIFEST_LIST),
    Some(manifest::DOCKER_MANIFEST_V1_SIGNED),
    Some(""),
    Some("text/plain"),
];

fuzz_target!(|data: &[u8]| {
    let Some((&sel, doc)) = data.split_first() else {
        return;
    };
    let declared = DECLARED[sel as usize % DECLARED.len()];
    if let Ok(m) = parse_manifest(doc, declared) {
        let (again, mt) = match &m {
            Manifest::Oci(x) | Manifest::Docker(x) => (manifest::to_json(x), m.media_type()),
            Manifest::OciIndex(x) | Manifest::DockerList(x) => {
                (manifest::to_json(x), m.media_type())
            }
        };
        let back = parse_manifest(&again, Some(mt))
            .unwrap_or_else(|e| panic!("re-parsing a serialised {mt}: {e}"));
        assert_eq!(back, m, "manifest changed in a round trip");
        // digests inside must be well-formed once parsed
        if let Manifest::Oci(x) | Manifest::Docker(x) = &m {
            for d in std::iter::once(&x.config).chain(&x.layers) {
                let s = d.digest.to_string();
                Digest::parse(&s).unwrap_or_else(|e| panic!("digest {s:?} does not re-parse: {e}"));
            }
        }
    }
    if let Ok(s) = std::str::from_utf8(doc) {
        let _ = Digest::parse(s);
    }
    if let Ok(cfg) = serde_json::from_slice::<ImageConfig>(doc) {
        let _ = convert::to_oci(&cfg);
        let _ = convert::to_docker(&cfg);
    }
    let _ = convert::image_id(doc);
});
