//! ID mappings of a working container (`--userns-uid-map`, `--userns-gid-map`,
//! `--userns-uid-map-user`, `--userns-gid-map-group`): the container runs in a user
//! namespace with these maps, and its files are stored *shifted*, owned by the host IDs the
//! container's IDs map to, as containers/storage stores them.
//!
//! ```text
//! image layers (container IDs) ──full tar──▶ apply, chown to host IDs ──▶ mapped top layer
//!                                                 (image record: mapped-top-layers)
//! copy --chown 1:1 ─▶ host IDs ─▶ container layer (parent: the mapped top layer)
//! run ─▶ user namespace with the maps: the rootfs's owners read as container IDs
//! commit ─▶ the container layer's diff, owners mapped back to container IDs
//! ```
//!
//! The mapped top layer is made once per image and set of maps and reused, as
//! containers/storage does; `rmi` removes it with the image.
use serde::{Deserialize, Serialize};

pub use crate::run::IdMap;

/// A container's UID and GID maps. Empty maps: no user namespace, IDs stored as they are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdMappings {
    /// UID maps (container → host).
    pub uids: Vec<IdMap>,
    /// GID maps.
    pub gids: Vec<IdMap>,
}

/// The host ID a container ID maps to through `maps` (identity when there are none; the ID
/// itself when no map covers it).
pub fn host_id(maps: &[IdMap], id: u32) -> u32 {
    map_id(maps, id, true).unwrap_or(id)
}

fn map_id(maps: &[IdMap], id: u32, to_host: bool) -> Option<u32> {
    maps.iter().find_map(|m| {
        let (from, to) = if to_host {
            (m.container_id, m.host_id)
        } else {
            (m.host_id, m.container_id)
        };
        (id >= from && id - from < m.size).then(|| to + (id - from))
    })
}

/// The overflow ID a host ID outside the maps reads as inside a user namespace.
pub const OVERFLOW_ID: u32 = 65534;

impl IdMappings {
    /// No maps at all.
    pub fn is_empty(&self) -> bool {
        self.uids.is_empty() && self.gids.is_empty()
    }

    /// The host IDs of container IDs (IDs no map covers stay as they are; with no maps,
    /// the identity).
    pub fn to_host(&self, uid: u32, gid: u32) -> (u32, u32) {
        if self.is_empty() {
            return (uid, gid);
        }
        (host_id(&self.uids, uid), host_id(&self.gids, gid))
    }

    /// The container IDs of host IDs; a host ID outside the maps is the overflow ID, as
    /// the kernel shows it inside the namespace.
    pub fn to_container(&self, uid: u32, gid: u32) -> (u32, u32) {
        if self.is_empty() {
            return (uid, gid);
        }
        (
            map_id(&self.uids, uid, false).unwrap_or(OVERFLOW_ID),
            map_id(&self.gids, gid, false).unwrap_or(OVERFLOW_ID),
        )
    }

    /// The maps as containers/storage records them on a layer (`uidmap`, `gidmap`:
    /// `[{"container_id":0,"host_id":100000,"size":65536}]`).
    pub fn storage_json(maps: &[IdMap]) -> Vec<serde_json::Value> {
        maps.iter()
            .map(|m| {
                serde_json::json!({"container_id": m.container_id, "host_id": m.host_id, "size": m.size})
            })
            .collect()
    }

    /// The maps read back from a containers/storage layer record.
    pub fn from_storage_json(uids: &[serde_json::Value], gids: &[serde_json::Value]) -> Self {
        let conv = |v: &[serde_json::Value]| {
            v.iter()
                .filter_map(|m| {
                    let g = |k: &str| m.get(k).and_then(|x| x.as_u64()).map(|x| x as u32);
                    Some(IdMap {
                        container_id: g("container_id")?,
                        host_id: g("host_id")?,
                        size: g("size")?,
                    })
                })
                .collect()
        };
        IdMappings {
            uids: conv(uids),
            gids: conv(gids),
        }
    }
}

/// How the maps are kept in the builder state: buildah's `IDMappingOptions` (OCI field
/// names in the maps).
#[derive(Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct StateForm {
    #[serde(rename = "HostUIDMapping", default)]
    host_uid_mapping: bool,
    #[serde(rename = "HostGIDMapping", default)]
    host_gid_mapping: bool,
    #[serde(
        rename = "UIDMap",
        default,
        deserialize_with = "crate::store::json::nullable"
    )]
    uid_map: Vec<OciMap>,
    #[serde(
        rename = "GIDMap",
        default,
        deserialize_with = "crate::store::json::nullable"
    )]
    gid_map: Vec<OciMap>,
}

#[derive(Serialize, Deserialize, Clone, Copy)]
struct OciMap {
    #[serde(rename = "containerID")]
    container_id: u32,
    #[serde(rename = "hostID")]
    host_id: u32,
    size: u32,
}

impl Serialize for IdMappings {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let conv = |v: &[IdMap]| {
            v.iter()
                .map(|m| OciMap {
                    container_id: m.container_id,
                    host_id: m.host_id,
                    size: m.size,
                })
                .collect()
        };
        StateForm {
            host_uid_mapping: self.uids.is_empty(),
            host_gid_mapping: self.gids.is_empty(),
            uid_map: conv(&self.uids),
            gid_map: conv(&self.gids),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for IdMappings {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let f = Option::<StateForm>::deserialize(d)?.unwrap_or_default();
        let conv = |v: Vec<OciMap>| {
            v.into_iter()
                .map(|m| IdMap {
                    container_id: m.container_id,
                    host_id: m.host_id,
                    size: m.size,
                })
                .collect()
        };
        Ok(IdMappings {
            uids: conv(f.uid_map),
            gids: conv(f.gid_map),
        })
    }
}

/// The ID-mapping flags as given (`from`, `bud`, and the global ones underneath).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdMappingRequest {
    /// `--userns-uid-map` values (each `container:host:size[:container:host:size…]`).
    pub uid_map: Vec<String>,
    /// `--userns-gid-map` values.
    pub gid_map: Vec<String>,
    /// `--userns-uid-map-user`: the UID ranges of this user in /etc/subuid.
    pub uid_map_user: Option<String>,
    /// `--userns-gid-map-group`: the GID ranges of this group in /etc/subgid.
    pub gid_map_group: Option<String>,
}

/// containers/storage's `ParseIDMap`: each value is one or more `uint32:uint32:uint32`
/// triples joined by `:`; anything else names the flag and every value given.
pub fn parse_id_maps(values: &[String], flag: &str) -> crate::Result<Vec<IdMap>> {
    let bad = || {
        let quoted: Vec<String> = values.iter().map(|v| format!("{v:?}")).collect();
        crate::Error::invalid(format!(
            "initializing ID mappings: {flag} setting is malformed expected [\"uint32:uint32:uint32\"]: [{}]",
            quoted.join(" ")
        ))
    };
    let mut out = Vec::new();
    for v in values.iter().filter(|v| !v.is_empty()) {
        let f: Vec<&str> = v.split(':').collect();
        if !f.len().is_multiple_of(3) {
            return Err(bad());
        }
        for t in f.chunks(3) {
            let n = |x: &str| x.parse::<u32>().map_err(|_| bad());
            out.push(IdMap {
                container_id: n(t[0])?,
                host_id: n(t[1])?,
                size: n(t[2])?,
            });
        }
    }
    Ok(out)
}

/// The ranges of `name` in a subordinate-ID file, laid out from container ID 0
/// (containers/storage's `NewIDMappings`).
fn subid_maps(file: &str, name: &str) -> crate::Result<Vec<IdMap>> {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    let ranges = crate::sys::userns::parse_subid(&text, name, None);
    if ranges.is_empty() {
        return Err(crate::Error::invalid(format!(
            "no subordinate ID ranges for {name:?} found in {file}"
        )));
    }
    let mut next = 0u32;
    Ok(ranges
        .into_iter()
        .map(|(start, size)| {
            let m = IdMap {
                container_id: next,
                host_id: start,
                size,
            };
            next = next.saturating_add(size);
            m
        })
        .collect())
}

impl IdMappingRequest {
    /// Whether no ID-mapping flag was given.
    pub fn is_empty(&self) -> bool {
        *self == IdMappingRequest::default()
    }

    /// This request, or `global` (the global flags) where this one gives no maps.
    pub fn or(&self, global: &IdMappingRequest) -> IdMappingRequest {
        let mut r = self.clone();
        if r.uid_map.is_empty() && r.gid_map.is_empty() {
            r.uid_map = global.uid_map.clone();
            r.gid_map = global.gid_map.clone();
        }
        r
    }

    /// The maps, as buildah builds them: name-based ranges first (a user name alone also
    /// names the group, and the other way round), then the explicit triples; when only
    /// one of the two maps results, the other is the same.
    pub fn resolve(&self) -> crate::Result<IdMappings> {
        if self.uid_map.is_empty() && !self.gid_map.is_empty() {
            return Err(crate::Error::invalid(
                "option --userns-gid-map can not be used without --userns-uid-map",
            ));
        }
        // Both are checked before any file is read, the UID map first.
        let explicit_uids = parse_id_maps(&self.uid_map, "userns-uid-map")?;
        let explicit_gids = parse_id_maps(
            if self.gid_map.is_empty() {
                &self.uid_map
            } else {
                &self.gid_map
            },
            "userns-gid-map",
        )?;
        let user = self
            .uid_map_user
            .clone()
            .or_else(|| self.gid_map_group.clone());
        let group = self
            .gid_map_group
            .clone()
            .or_else(|| self.uid_map_user.clone());
        let mut m = IdMappings::default();
        if let (Some(u), Some(g)) = (user, group) {
            m.uids = subid_maps("/etc/subuid", &u)?;
            m.gids = subid_maps("/etc/subgid", &g)?;
        }
        m.uids.extend(explicit_uids);
        m.gids.extend(explicit_gids);
        if m.uids.is_empty() && !m.gids.is_empty() {
            m.uids = m.gids.clone();
        }
        if m.gids.is_empty() && !m.uids.is_empty() {
            m.gids = m.uids.clone();
        }
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn malformed_maps_are_named_as_buildah_names_them() {
        let e = parse_id_maps(&s(&["16"]), "userns-uid-map").unwrap_err();
        assert_eq!(
            e.to_string(),
            "initializing ID mappings: userns-uid-map setting is malformed expected [\"uint32:uint32:uint32\"]: [\"16\"]"
        );
        let e = parse_id_maps(&s(&["0:1:2", "a:b:c"]), "userns-gid-map").unwrap_err();
        assert!(e.to_string().ends_with("[\"0:1:2\" \"a:b:c\"]"), "{e}");
        let m = parse_id_maps(&s(&["0:100:10:10:500:5"]), "userns-uid-map").unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m[1].host_id, 500);
    }

    #[test]
    fn resolve_fills_the_other_map_and_refuses_a_gid_map_alone() {
        let r = IdMappingRequest {
            uid_map: s(&["0:32:16"]),
            ..Default::default()
        };
        let m = r.resolve().unwrap();
        assert_eq!(m.gids, m.uids);
        let r = IdMappingRequest {
            gid_map: s(&["0:32:16"]),
            ..Default::default()
        };
        assert!(r
            .resolve()
            .unwrap_err()
            .to_string()
            .contains("userns-gid-map can not be used without --userns-uid-map"));
        // The UID map is checked first.
        let r = IdMappingRequest {
            uid_map: s(&["a"]),
            gid_map: s(&["bogus"]),
            ..Default::default()
        };
        assert!(r.resolve().unwrap_err().to_string().contains("[\"a\"]"));
    }

    #[test]
    fn ids_map_both_ways_and_state_form_round_trips() {
        let m = IdMappings {
            uids: vec![IdMap {
                container_id: 0,
                host_id: 1000,
                size: 10,
            }],
            gids: vec![IdMap {
                container_id: 0,
                host_id: 2000,
                size: 10,
            }],
        };
        assert_eq!(m.to_host(1, 1), (1001, 2001));
        assert_eq!(m.to_container(1001, 2001), (1, 1));
        assert_eq!(m.to_container(5, 5), (OVERFLOW_ID, OVERFLOW_ID));
        let j = serde_json::to_value(&m).unwrap();
        assert_eq!(j["UIDMap"][0]["hostID"], 1000);
        assert_eq!(serde_json::from_value::<IdMappings>(j).unwrap(), m);
        assert!(
            serde_json::from_value::<IdMappings>(serde_json::Value::Null)
                .unwrap()
                .is_empty()
        );
        let back = IdMappings::from_storage_json(
            &IdMappings::storage_json(&m.uids),
            &IdMappings::storage_json(&m.gids),
        );
        assert_eq!(back, m);
    }
}
