//! The one typed [`Platform`] (`--platform`, `--arch`, `--os`, `--variant`) and the one
//! instance chooser over manifest lists and OCI indexes, as containers/image chooses.
//!
//! ```text
//!  "linux/aarch64" ──Platform::parse──▶ linux/arm64 (normalised as containerd's platforms)
//!  Platform ──wanted()──▶ [linux/arm64/v8, linux/arm64] (empty fields = the host's;
//!                          arm variants from most to least compatible, then "any")
//!  ImageIndex ──choose_instance(index, platform)──▶ &Descriptor (first wanted candidate
//!                          that an entry matches; else the first entry without a platform)
//! ```
//! Used by `from`, `pull`, the copy pipeline (`transport::load_image_manifest`) and the
//! store reader (`from::read_image`): there is no other platform picker.
use std::fmt;

use super::manifest::{self, Descriptor, ImageIndex};
use crate::error::{Error, Result};

/// A platform to select from a manifest list. Empty fields mean "the host's" (see
/// [`Platform::wanted`]); fields are kept normalised (`x86_64` is stored as `amd64`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Platform {
    /// GOOS spelling (`linux`).
    pub os: String,
    /// GOARCH spelling (`amd64`, `arm64`).
    pub architecture: String,
    /// `v7`, `v8`, …
    pub variant: String,
}

/// Variants of an architecture from most to least capable (containers/image's
/// `compatibility` table): an `arm/v7` host also runs `v6` and `v5` images.
fn compatible_variants(arch: &str) -> &'static [&'static str] {
    match arch {
        "arm" => &["v7", "v6", "v5"],
        "arm64" => &["v8"],
        _ => &[],
    }
}

/// Normalise an OS name (lower case; `macos` is `darwin`).
pub fn normalize_os(os: &str) -> String {
    let os = os.to_ascii_lowercase();
    match os.as_str() {
        "macos" => "darwin".to_string(),
        _ => os,
    }
}

/// Normalise an architecture and variant as containerd's `platforms.Parse` does (`x86_64` is
/// `amd64`, `aarch64` is `arm64`, `armhf` is `arm/v7`, `armel` is `arm/v6`, `i386` is `386`),
/// except that an `arm64` variant `8`/`v8.0` is kept as `v8`. A plain `arm` keeps an empty
/// variant (v7 is implied; an empty variant matches every variant, see [`Platform::wanted`]),
/// as does a plain `arm64` (v8 implied).
pub fn normalize_arch(arch: &str, variant: &str) -> (String, String) {
    let arch = arch.to_ascii_lowercase();
    let variant = variant.to_ascii_lowercase();
    let (a, v): (&str, String) = match arch.as_str() {
        "i386" | "i486" | "i586" | "i686" | "x86" | "386" => ("386", String::new()),
        "x86_64" | "x86-64" | "amd64" => (
            "amd64",
            if variant == "v1" {
                String::new()
            } else {
                variant
            },
        ),
        "aarch64" | "arm64" => (
            "arm64",
            match variant.as_str() {
                "8" | "v8" | "v8.0" => "v8".to_string(),
                "9" | "9.0" | "v9.0" => "v9".to_string(),
                _ => variant,
            },
        ),
        "armhf" => ("arm", "v7".to_string()),
        "armel" => ("arm", "v6".to_string()),
        "armv7l" | "armv7" => ("arm", "v7".to_string()),
        "arm" => (
            "arm",
            match variant.as_str() {
                "7" => "v7".to_string(),
                "5" | "6" | "8" => format!("v{variant}"),
                _ => variant,
            },
        ),
        "armv6l" | "armv6" => ("arm", "v6".to_string()),
        "ppc64el" => ("ppc64le", variant),
        _ => (arch.as_str(), variant),
    };
    (a.to_string(), v)
}

impl Platform {
    /// A platform from its parts, normalised.
    pub fn new(os: &str, architecture: &str, variant: &str) -> Platform {
        let (architecture, variant) = if architecture.is_empty() {
            (String::new(), variant.to_ascii_lowercase())
        } else {
            normalize_arch(architecture, variant)
        };
        Platform {
            os: normalize_os(os),
            architecture,
            variant,
        }
    }

    /// Parse `--platform`: `os/arch[/variant]` (buildah's `parse.Platform` over containerd's
    /// `platforms.Parse`): `linux/x86_64` is `linux/amd64`, `linux/arm` is `linux/arm`
    /// (variant v7 implied, left empty as containerd does), `local` or empty is the host.
    pub fn parse(s: &str) -> Result<Platform> {
        let trimmed = s.trim_matches('/');
        if trimmed.is_empty() || trimmed == "local" {
            return Ok(Platform::host());
        }
        let parts: Vec<&str> = trimmed.split('/').collect();
        let bad = |why: &str| {
            Error::invalid(format!(
                "invalid platform syntax for --platform={s:?}: {why}"
            ))
        };
        if parts.iter().any(|p| p.is_empty()) {
            return Err(bad("empty component"));
        }
        if parts.iter().any(|p| {
            !p.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
        }) {
            return Err(bad("invalid characters"));
        }
        Ok(match parts.as_slice() {
            [one] => {
                let os = normalize_os(one);
                if KNOWN_OS.contains(&os.as_str()) {
                    Platform::new(&os, host_arch(), "")
                } else {
                    Platform::new("linux", one, "")
                }
            }
            [os, arch] => Platform::new(os, arch, ""),
            [os, arch, variant] => Platform::new(os, arch, variant),
            _ => return Err(bad("expected os/arch[/variant]")),
        })
    }

    /// This host's platform (`linux/amd64`, `linux/arm64/v8`, …).
    pub fn host() -> Platform {
        let variant = match std::env::consts::ARCH {
            "aarch64" => "v8",
            "arm" => "v7",
            _ => "",
        };
        Platform::new(std::env::consts::OS, host_arch(), variant)
    }

    /// Whether no field is set (= the host's platform).
    pub fn is_empty(&self) -> bool {
        self.os.is_empty() && self.architecture.is_empty() && self.variant.is_empty()
    }

    /// The platform with empty fields filled from the host (the variant only when the
    /// architecture is the host's too, as containers/image auto-detects it).
    pub fn or_host(&self) -> Platform {
        let host = Platform::host();
        let (architecture, variant) = if self.architecture.is_empty() {
            (
                host.architecture,
                if self.variant.is_empty() {
                    host.variant
                } else {
                    self.variant.clone()
                },
            )
        } else {
            (self.architecture.clone(), self.variant.clone())
        };
        Platform {
            os: if self.os.is_empty() {
                host.os
            } else {
                self.os.clone()
            },
            architecture,
            variant,
        }
    }

    /// The platforms an image may have to be usable here, best first (containers/image's
    /// `WantedPlatforms`): the wanted variant, then the less capable compatible ones, then
    /// any variant; without a wanted variant, any variant first.
    pub fn wanted(&self) -> Vec<Platform> {
        let p = self.or_host();
        let order = compatible_variants(&p.architecture);
        let mut variants: Vec<&str> = Vec::new();
        if !p.variant.is_empty() {
            match order.iter().position(|v| *v == p.variant) {
                Some(i) => variants.extend(&order[i..]),
                None => variants.push(&p.variant),
            }
            variants.push("");
        } else {
            variants.push("");
            variants.extend(order);
        }
        variants
            .into_iter()
            .map(|v| Platform {
                os: p.os.clone(),
                architecture: p.architecture.clone(),
                variant: v.to_string(),
            })
            .collect()
    }

    /// Whether an index entry's platform is this wanted (normalised, filled) platform: OS
    /// and architecture equal, and the variant equal unless this one's is empty ("any").
    pub fn matches(&self, entry: &manifest::Platform) -> bool {
        let e = Platform::new(
            &entry.os,
            &entry.architecture,
            entry.variant.as_deref().unwrap_or(""),
        );
        e.os == self.os
            && e.architecture == self.architecture
            && (self.variant.is_empty() || e.variant == self.variant)
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if !self.variant.is_empty() {
            write!(f, "/{}", self.variant)?;
        }
        Ok(())
    }
}

impl std::str::FromStr for Platform {
    type Err = Error;
    fn from_str(s: &str) -> Result<Platform> {
        Platform::parse(s)
    }
}

/// GOOS values containerd's `platforms` recognises as an OS in a one-part `--platform`.
const KNOWN_OS: &[&str] = &[
    "aix",
    "android",
    "darwin",
    "dragonfly",
    "freebsd",
    "hurd",
    "illumos",
    "ios",
    "js",
    "linux",
    "nacl",
    "netbsd",
    "openbsd",
    "plan9",
    "solaris",
    "windows",
    "zos",
];

/// The host architecture in GOARCH spelling.
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        "loongarch64" => "loong64",
        other => other,
    }
}

fn entry_platform(d: &Descriptor) -> String {
    match &d.platform {
        None => "(no platform)".to_string(),
        Some(p) => Platform {
            os: p.os.clone(),
            architecture: p.architecture.clone(),
            variant: p.variant.clone().unwrap_or_default(),
        }
        .to_string(),
    }
}

/// The entry of `index` to use for `platform` (empty fields = the host's): the first entry
/// matching the best wanted candidate (see [`Platform::wanted`]), else the first entry that
/// has no platform, as containers/image's `chooseInstance`. The error is containers/image's,
/// followed by the platforms the list has.
pub fn choose_instance<'i>(index: &'i ImageIndex, platform: &Platform) -> Result<&'i Descriptor> {
    let wanted = platform.wanted();
    for w in &wanted {
        if let Some(d) = index
            .manifests
            .iter()
            .find(|d| d.platform.as_ref().is_some_and(|p| w.matches(p)))
        {
            return Ok(d);
        }
    }
    if let Some(d) = index.manifests.iter().find(|d| d.platform.is_none()) {
        return Ok(d);
    }
    let first = &wanted[0];
    let has: Vec<String> = index.manifests.iter().map(entry_platform).collect();
    let kind = if index.media_type.as_deref() == Some(manifest::DOCKER_MANIFEST_LIST) {
        "manifest list"
    } else {
        "image index"
    };
    Err(Error::invalid(format!(
        "no image found in {kind} for architecture {}, variant {:?}, OS {} (the {kind} has {})",
        first.architecture,
        first.variant,
        first.os,
        if has.is_empty() {
            "no images".to_string()
        } else {
            has.join(", ")
        }
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::Digest;

    fn p(os: &str, arch: &str, v: &str) -> Platform {
        Platform {
            os: os.into(),
            architecture: arch.into(),
            variant: v.into(),
        }
    }

    #[test]
    fn parse_and_normalise() {
        let host = Platform::host();
        let cases: &[(&str, Platform)] = &[
            ("linux/amd64", p("linux", "amd64", "")),
            ("linux/x86_64", p("linux", "amd64", "")),
            ("linux/x86-64", p("linux", "amd64", "")),
            ("Linux/AMD64", p("linux", "amd64", "")),
            ("linux/aarch64", p("linux", "arm64", "")),
            ("linux/arm64", p("linux", "arm64", "")),
            ("linux/arm64/v8", p("linux", "arm64", "v8")),
            ("linux/arm64/8", p("linux", "arm64", "v8")),
            ("linux/aarch64/v8", p("linux", "arm64", "v8")),
            ("linux/armhf", p("linux", "arm", "v7")),
            ("linux/armel", p("linux", "arm", "v6")),
            ("linux/arm", p("linux", "arm", "")),
            ("linux/arm/7", p("linux", "arm", "v7")),
            ("linux/arm/v6", p("linux", "arm", "v6")),
            ("linux/arm/5", p("linux", "arm", "v5")),
            ("linux/i386", p("linux", "386", "")),
            ("linux/386", p("linux", "386", "")),
            ("linux/ppc64le", p("linux", "ppc64le", "")),
            ("linux/s390x", p("linux", "s390x", "")),
            ("windows/amd64", p("windows", "amd64", "")),
            ("/linux/amd64/", p("linux", "amd64", "")),
            ("linux", p("linux", host_arch(), "")),
            ("arm64", p("linux", "arm64", "")),
            ("local", host.clone()),
            ("", host.clone()),
        ];
        for (input, want) in cases {
            assert_eq!(&Platform::parse(input).unwrap(), want, "{input}");
        }
        for bad in [
            "linux/amd64/v1/x",
            "linux//amd64",
            "lin ux/amd64",
            "linux/am$d64",
        ] {
            let e = Platform::parse(bad).unwrap_err().to_string();
            assert!(
                e.contains("invalid platform syntax for --platform"),
                "{bad}: {e}"
            );
        }
        assert_eq!(p("linux", "arm64", "v8").to_string(), "linux/arm64/v8");
        assert_eq!(p("linux", "amd64", "").to_string(), "linux/amd64");
        assert_eq!(
            Platform::new("linux", "x86_64", ""),
            p("linux", "amd64", "")
        );
    }

    #[test]
    fn host_and_defaults() {
        let h = Platform::host();
        assert_eq!(h.os, "linux");
        assert_eq!(h.architecture, host_arch());
        assert_eq!(Platform::default().or_host(), h);
        // an explicit architecture does not inherit the host's variant
        assert_eq!(p("", "arm", "").or_host(), p("linux", "arm", ""));
        assert_eq!(p("", "", "v9").or_host().variant, "v9");
        assert!(Platform::default().is_empty());
    }

    #[test]
    fn wanted_candidates() {
        let names = |pl: Platform| -> Vec<String> {
            pl.wanted().into_iter().map(|c| c.to_string()).collect()
        };
        assert_eq!(
            names(p("linux", "arm", "v7")),
            ["linux/arm/v7", "linux/arm/v6", "linux/arm/v5", "linux/arm"]
        );
        assert_eq!(
            names(p("linux", "arm", "v6")),
            ["linux/arm/v6", "linux/arm/v5", "linux/arm"]
        );
        assert_eq!(
            names(p("linux", "arm", "")),
            ["linux/arm", "linux/arm/v7", "linux/arm/v6", "linux/arm/v5"]
        );
        assert_eq!(
            names(p("linux", "arm64", "")),
            ["linux/arm64", "linux/arm64/v8"]
        );
        assert_eq!(
            names(p("linux", "arm64", "v8")),
            ["linux/arm64/v8", "linux/arm64"]
        );
        assert_eq!(
            names(p("linux", "amd64", "v3")),
            ["linux/amd64/v3", "linux/amd64"]
        );
        assert_eq!(names(p("linux", "s390x", "")), ["linux/s390x"]);
    }

    fn entry(hex: char, plat: Option<(&str, &str, Option<&str>)>) -> Descriptor {
        let mut d = Descriptor::new(
            manifest::OCI_MANIFEST,
            Digest::parse(&format!("sha256:{}", hex.to_string().repeat(64))).unwrap(),
            1,
        );
        d.platform = plat.map(|(os, arch, v)| manifest::Platform {
            os: os.into(),
            architecture: arch.into(),
            variant: v.map(String::from),
            ..Default::default()
        });
        d
    }

    fn index(entries: Vec<Descriptor>) -> ImageIndex {
        let mut i = ImageIndex::new_oci();
        i.manifests = entries;
        i
    }

    #[test]
    fn choose_from_a_list() {
        let list = index(vec![
            entry('1', Some(("linux", "amd64", None))),
            entry('2', Some(("linux", "arm64", Some("v8")))),
            entry('3', Some(("linux", "arm", Some("v6")))),
            entry('4', Some(("linux", "arm", Some("v7")))),
            entry('5', Some(("windows", "amd64", None))),
            entry('6', Some(("linux", "ppc64le", None))),
            entry('7', Some(("linux", "aarch64", None))),
        ]);
        let cases: &[(Platform, char)] = &[
            (p("linux", "amd64", ""), '1'),
            (p("linux", "arm64", ""), '2'),
            (p("linux", "arm64", "v8"), '2'),
            (p("linux", "arm", "v7"), '4'),
            (p("linux", "arm", "v6"), '3'),
            // no variant wanted: the first arm entry
            (p("linux", "arm", ""), '3'),
            (p("windows", "amd64", ""), '5'),
            (p("linux", "ppc64le", ""), '6'),
            (Platform::parse("linux/armhf").unwrap(), '4'),
            (Platform::parse("linux/x86_64").unwrap(), '1'),
        ];
        for (want, hex) in cases {
            let d = choose_instance(&list, want).unwrap();
            assert_eq!(d.digest.hex().chars().next(), Some(*hex), "{want}");
        }
        // no v5 entry: the last candidate (any variant) takes the first arm entry, as
        // containers/image does
        assert_eq!(
            choose_instance(&list, &p("linux", "arm", "v5"))
                .unwrap()
                .digest
                .hex()
                .chars()
                .next(),
            Some('3')
        );
        let e = choose_instance(&list, &p("linux", "s390x", ""))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(
                r#"no image found in image index for architecture s390x, variant "", OS linux"#
            ) && e.contains("the image index has linux/amd64, linux/arm64/v8, linux/arm/v6"),
            "{e}"
        );
        // an entry normalised from aarch64 matches arm64 (first match is '2' above)
        let only7 = index(vec![entry('7', Some(("linux", "aarch64", None)))]);
        assert_eq!(
            choose_instance(&only7, &p("linux", "arm64", "v8"))
                .unwrap()
                .digest
                .hex()
                .chars()
                .next(),
            Some('7')
        );
        // host default (empty platform) picks the host's entry
        let host = Platform::host();
        let hl = index(vec![
            entry('9', Some(("linux", "mips64", None))),
            entry(
                '8',
                Some((
                    "linux",
                    &host.architecture,
                    Some(&host.variant)
                        .filter(|v| !v.is_empty())
                        .map(|v| v.as_str()),
                )),
            ),
        ]);
        assert_eq!(
            choose_instance(&hl, &Platform::default())
                .unwrap()
                .digest
                .hex()
                .chars()
                .next(),
            Some('8')
        );
        // entries without a platform are the fallback
        let anon = index(vec![
            entry('a', Some(("linux", "mips64", None))),
            entry('b', None),
        ]);
        assert_eq!(
            choose_instance(&anon, &p("linux", "amd64", ""))
                .unwrap()
                .digest
                .hex()
                .chars()
                .next(),
            Some('b')
        );
        let empty = index(vec![]);
        assert!(choose_instance(&empty, &Platform::default())
            .unwrap_err()
            .to_string()
            .contains("no images"));
    }
}
