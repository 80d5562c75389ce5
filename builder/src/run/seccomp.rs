//! Seccomp profiles in containers/common's format, resolved into the OCI `linux.seccomp`.
//!
//! ```text
//!  --security-opt seccomp=FILE ──┐
//!  /etc/containers/seccomp.json ─┼─► Profile ──resolve(caps, arch)──► LinuxSeccomp (spec)
//!  /usr/share/containers/… ──────┤   (includes/excludes,             │
//!  built-in (seccomp.json) ──────┘    archMap, errno names)           ├─► runc applies it
//!                                                                     └─► sys::seccomp (libseccomp)
//! ```
//!
//! The format is containers/common's `pkg/seccomp` `Seccomp` struct, which podman and buildah
//! read: `defaultAction`, `defaultErrnoRet`/`defaultErrno`, `architectures` or `archMap`,
//! `syscalls[]` with `name`/`names`, `action`, `errnoRet`/`errno`, `args`, `includes` and
//! `excludes` (`caps`, `arches`, and Docker's `minKernel`). A plain OCI `linux.seccomp` object
//! is a subset of it and loads too.
//!
//! The default is found as buildah 1.28 finds it: `/etc/containers/seccomp.json`, else
//! `/usr/share/containers/seccomp.json`, else the built-in copy of containers/common's
//! `pkg/seccomp/seccomp.json` (commit f437c58aab67, August 2025; Apache-2.0 like hod).
//! [`resolve`] then does what containers/common's `setupSeccomp` does for a spec: keeps the
//! rules whose `includes` hold and whose `excludes` do not, for the capabilities in the bounding
//! set and the native architecture, and turns `archMap` into the native architecture and its
//! sub-architectures (x86_64 with x86 and x32, aarch64 with arm).
use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArgBuilder, LinuxSeccompFilterFlag,
    LinuxSeccompOperator, LinuxSyscall,
};
use serde::{Deserialize, Serialize};

use super::{RunError, SeccompProfile};

/// containers/common's default profile, as shipped in its `pkg/seccomp/seccomp.json`.
pub const BUILTIN_PROFILE: &str = include_str!("seccomp.json");
/// A profile here replaces the default (containers/common's `SeccompOverridePath`).
pub const OVERRIDE_PATH: &str = "/etc/containers/seccomp.json";
/// The packaged default (containers/common's `SeccompDefaultPath`).
pub const DEFAULT_PATH: &str = "/usr/share/containers/seccomp.json";

/// A seccomp profile (containers/common's `Seccomp`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    /// The action for syscalls no rule matches; `None` with no rules = no filter.
    #[serde(default)]
    pub default_action: Option<LinuxSeccompAction>,
    /// The errno of an `SCMP_ACT_ERRNO` default action.
    #[serde(default)]
    pub default_errno_ret: Option<u32>,
    /// The same as a name (`ENOSYS`) or a number; wins over `defaultErrnoRet`.
    #[serde(default)]
    pub default_errno: Option<String>,
    /// The architectures, as a flat list (exclusive with `archMap`).
    #[serde(default, deserialize_with = "null_default")]
    pub architectures: Vec<Arch>,
    /// Per native architecture, the sub-architectures filtered along with it.
    #[serde(default, deserialize_with = "null_default")]
    pub arch_map: Vec<ArchMap>,
    /// The rules, in order.
    #[serde(default, deserialize_with = "null_default")]
    pub syscalls: Vec<Rule>,
    /// `SECCOMP_FILTER_FLAG_*` flags.
    #[serde(default, deserialize_with = "null_default")]
    pub flags: Vec<LinuxSeccompFilterFlag>,
    /// A seccomp agent's socket (passed through to the spec).
    #[serde(default)]
    pub listener_path: Option<PathBuf>,
    /// Metadata for the seccomp agent.
    #[serde(default)]
    pub listener_metadata: Option<String>,
}

/// One `archMap` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArchMap {
    /// The native architecture this entry is for.
    pub architecture: Arch,
    /// Architectures whose syscalls the filter handles too (compat ABIs).
    #[serde(default, deserialize_with = "null_default")]
    pub sub_architectures: Vec<Arch>,
}

/// One rule of `syscalls[]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rule {
    /// A single name (exclusive with `names`).
    #[serde(default)]
    pub name: Option<String>,
    /// The syscalls the rule is for.
    #[serde(default, deserialize_with = "null_default")]
    pub names: Vec<String>,
    /// What a matching call gets.
    pub action: LinuxSeccompAction,
    /// Argument conditions (all must hold).
    #[serde(default, deserialize_with = "null_default")]
    pub args: Vec<Arg>,
    /// Free text.
    #[serde(default)]
    pub comment: Option<String>,
    /// Conditions under which the rule is kept.
    #[serde(default)]
    pub includes: Filter,
    /// Conditions under which the rule is dropped.
    #[serde(default)]
    pub excludes: Filter,
    /// The errno of an `SCMP_ACT_ERRNO` action.
    #[serde(default)]
    pub errno_ret: Option<u32>,
    /// The same as a name or a number; wins over `errnoRet`.
    #[serde(default)]
    pub errno: Option<String>,
}

/// `includes` / `excludes`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Filter {
    /// Capabilities (`CAP_SYS_ADMIN`): includes needs all of them, excludes any.
    #[serde(default, deserialize_with = "null_default")]
    pub caps: Vec<String>,
    /// Architectures in Go's spelling (`amd64`, `arm64`, `x32`, …).
    #[serde(default, deserialize_with = "null_default")]
    pub arches: Vec<String>,
    /// Docker's `minKernel` (`"4.8"`): includes needs at least, excludes drops from this on.
    #[serde(default)]
    pub min_kernel: Option<String>,
}

/// One argument condition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Arg {
    /// Argument index, 0–5.
    pub index: usize,
    /// The value (the mask for `SCMP_CMP_MASKED_EQ`).
    #[serde(default)]
    pub value: u64,
    /// The value the masked argument must equal, for `SCMP_CMP_MASKED_EQ`.
    #[serde(default)]
    pub value_two: u64,
    /// The comparison.
    pub op: LinuxSeccompOperator,
}

fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

impl Profile {
    /// Parse a profile file's bytes; `what` names it in the error.
    pub fn parse(data: &[u8], what: &str) -> Result<Profile, RunError> {
        serde_json::from_slice(data)
            .map_err(|e| RunError::Invalid(format!("decoding seccomp profile {what}: {e}")))
    }

    /// containers/common's default profile (the built-in copy).
    pub fn builtin() -> Profile {
        Profile::parse(BUILTIN_PROFILE.as_bytes(), "(built-in)")
            .expect("the built-in seccomp profile parses")
    }

    /// Read a profile file.
    pub fn read(path: &Path) -> Result<Profile, RunError> {
        let data = std::fs::read(path).map_err(|e| RunError::Io {
            op: "reading seccomp profile".into(),
            path: path.to_path_buf(),
            source: e,
        })?;
        Profile::parse(&data, &path.display().to_string())
    }

    /// The profile `--security-opt seccomp=…` asks for: `None` for `unconfined`, the file it
    /// names, or the default (override file, packaged file, built-in copy, in that order).
    pub fn for_option(opt: Option<&SeccompProfile>) -> Result<Option<Profile>, RunError> {
        match opt {
            Some(SeccompProfile::Unconfined) => Ok(None),
            Some(SeccompProfile::File(path)) => Profile::read(path).map(Some),
            None => {
                for path in [OVERRIDE_PATH, DEFAULT_PATH] {
                    if Path::new(path).is_file() {
                        return Profile::read(Path::new(path)).map(Some);
                    }
                }
                Ok(Some(Profile::builtin()))
            }
        }
    }
}

/// The running machine's architecture in Go's spelling (what `includes.arches` names and
/// libseccomp-golang's `GetNativeArch().String()` returns).
pub fn native_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "x86",
        "arm" => "arm",
        "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
        "powerpc64" => "ppc64",
        "mips64" if cfg!(target_endian = "little") => "mipsel64",
        "loongarch64" => "loong64",
        other => other,
    }
}

/// The libseccomp architecture of a native architecture (containers/common's `nativeToSeccomp`).
fn seccomp_arch(native: &str) -> Option<Arch> {
    Some(match native {
        "amd64" => Arch::ScmpArchX86_64,
        "arm64" => Arch::ScmpArchAarch64,
        "mips64" => Arch::ScmpArchMips64,
        "mips64n32" => Arch::ScmpArchMips64n32,
        "mipsel64" => Arch::ScmpArchMipsel64,
        "mipsel64n32" => Arch::ScmpArchMipsel64n32,
        "s390x" => Arch::ScmpArchS390x,
        _ => return None,
    })
}

/// The running kernel's `major.minor`.
pub fn kernel_version() -> Option<(u32, u32)> {
    let release = rustix::system::uname()
        .release()
        .to_string_lossy()
        .into_owned();
    parse_version(&release)
}

fn parse_version(s: &str) -> Option<(u32, u32)> {
    let mut it = s.split(|c: char| !c.is_ascii_digit());
    let major = it.next()?.parse().ok()?;
    let minor = it.next().and_then(|m| m.parse().ok()).unwrap_or(0);
    Some((major, minor))
}

fn errno_value(name: &Option<String>, number: Option<u32>) -> Result<Option<u32>, RunError> {
    let Some(name) = name.as_deref().filter(|n| !n.is_empty()) else {
        return Ok(number);
    };
    if let Ok(n) = name.parse::<u32>() {
        return Ok(Some(n));
    }
    ERRNO_NAMES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| Some(*v as u32))
        .ok_or_else(|| RunError::Invalid(format!("unknown errno {name}")))
}

/// The errno names a profile may use (containers/common's `errnoArch`, the generic values).
const ERRNO_NAMES: &[(&str, i32)] = &[
    ("EPERM", libc::EPERM),
    ("ENOENT", libc::ENOENT),
    ("ESRCH", libc::ESRCH),
    ("EINTR", libc::EINTR),
    ("EIO", libc::EIO),
    ("ENXIO", libc::ENXIO),
    ("E2BIG", libc::E2BIG),
    ("ENOEXEC", libc::ENOEXEC),
    ("EBADF", libc::EBADF),
    ("ECHILD", libc::ECHILD),
    ("EAGAIN", libc::EAGAIN),
    ("ENOMEM", libc::ENOMEM),
    ("EACCES", libc::EACCES),
    ("EFAULT", libc::EFAULT),
    ("EBUSY", libc::EBUSY),
    ("EEXIST", libc::EEXIST),
    ("EXDEV", libc::EXDEV),
    ("ENODEV", libc::ENODEV),
    ("ENOTDIR", libc::ENOTDIR),
    ("EISDIR", libc::EISDIR),
    ("EINVAL", libc::EINVAL),
    ("ENFILE", libc::ENFILE),
    ("EMFILE", libc::EMFILE),
    ("ENOTTY", libc::ENOTTY),
    ("EFBIG", libc::EFBIG),
    ("ENOSPC", libc::ENOSPC),
    ("ESPIPE", libc::ESPIPE),
    ("EROFS", libc::EROFS),
    ("EMLINK", libc::EMLINK),
    ("EPIPE", libc::EPIPE),
    ("EDOM", libc::EDOM),
    ("ERANGE", libc::ERANGE),
    ("EDEADLK", libc::EDEADLK),
    ("ENAMETOOLONG", libc::ENAMETOOLONG),
    ("ENOLCK", libc::ENOLCK),
    ("ENOSYS", libc::ENOSYS),
    ("ENOTEMPTY", libc::ENOTEMPTY),
    ("ELOOP", libc::ELOOP),
    ("ENOMSG", libc::ENOMSG),
    ("ENODATA", libc::ENODATA),
    ("ENOTSUP", libc::ENOTSUP),
    ("EOPNOTSUPP", libc::EOPNOTSUPP),
    ("EAFNOSUPPORT", libc::EAFNOSUPPORT),
    ("EPROTONOSUPPORT", libc::EPROTONOSUPPORT),
    ("EADDRINUSE", libc::EADDRINUSE),
    ("ECONNREFUSED", libc::ECONNREFUSED),
    ("ENETUNREACH", libc::ENETUNREACH),
    ("ETIMEDOUT", libc::ETIMEDOUT),
    ("ENOTSOCK", libc::ENOTSOCK),
    ("ECANCELED", libc::ECANCELED),
];

/// Whether `running` is at least `min` (`"4.8"`); an unreadable version keeps the rule.
fn kernel_at_least(running: Option<(u32, u32)>, min: &str) -> Result<bool, RunError> {
    let want = parse_version(min)
        .ok_or_else(|| RunError::Invalid(format!("invalid minKernel {min:?}")))?;
    Ok(running.is_none_or(|v| v >= want))
}

/// Resolve `profile` for a container whose bounding set is `caps`, on the native architecture
/// `arch` (Go's spelling) and kernel `kernel` (`major.minor`): containers/common's
/// `setupSeccomp`, plus Docker's `minKernel`. `None` when the profile says nothing.
pub fn resolve(
    profile: &Profile,
    caps: &[&str],
    arch: &str,
    kernel: Option<(u32, u32)>,
) -> Result<Option<LinuxSeccomp>, RunError> {
    let Some(default_action) = profile.default_action else {
        if profile.syscalls.is_empty() {
            return Ok(None);
        }
        return Err(RunError::Invalid(
            "seccomp profile: syscall rules without a defaultAction".into(),
        ));
    };
    if !profile.architectures.is_empty() && !profile.arch_map.is_empty() {
        return Err(RunError::Invalid(
            "'architectures' and 'archMap' were specified in the seccomp profile, use either 'architectures' or 'archMap'".into(),
        ));
    }
    let mut arches = profile.architectures.clone();
    if let Some(native) = seccomp_arch(arch) {
        if let Some(m) = profile.arch_map.iter().find(|m| m.architecture == native) {
            arches.push(m.architecture);
            arches.extend(m.sub_architectures.iter().copied());
        }
    }
    let has = |c: &String| caps.contains(&c.as_str());
    let mut syscalls = Vec::new();
    for rule in &profile.syscalls {
        let ex = &rule.excludes;
        let inc = &rule.includes;
        if ex.arches.iter().any(|a| a == arch) || ex.caps.iter().any(has) {
            continue;
        }
        if let Some(min) = &ex.min_kernel {
            if kernel_at_least(kernel, min)? {
                continue;
            }
        }
        if (!inc.arches.is_empty() && !inc.arches.iter().any(|a| a == arch))
            || !inc.caps.iter().all(has)
        {
            continue;
        }
        if let Some(min) = &inc.min_kernel {
            if !kernel_at_least(kernel, min)? {
                continue;
            }
        }
        let names = match (&rule.name, rule.names.is_empty()) {
            (Some(n), true) if !n.is_empty() => vec![n.clone()],
            (Some(n), false) if !n.is_empty() => {
                return Err(RunError::Invalid(
                    "'name' and 'names' were specified in the seccomp profile, use either 'name' or 'names'".into(),
                ))
            }
            _ => rule.names.clone(),
        };
        if names.is_empty() {
            continue;
        }
        let args = rule
            .args
            .iter()
            .map(|a| {
                if a.index > 5 {
                    return Err(RunError::Invalid(format!(
                        "seccomp profile: argument index {} out of range",
                        a.index
                    )));
                }
                LinuxSeccompArgBuilder::default()
                    .index(a.index)
                    .value(a.value)
                    .value_two(a.value_two)
                    .op(a.op)
                    .build()
                    .map_err(|e| RunError::Invalid(format!("seccomp profile argument: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut sc = LinuxSyscall::default();
        sc.set_names(names)
            .set_action(rule.action)
            .set_errno_ret(errno_value(&rule.errno, rule.errno_ret)?)
            .set_args((!args.is_empty()).then_some(args));
        syscalls.push(sc);
    }
    let mut out = LinuxSeccomp::default();
    out.set_default_action(default_action)
        .set_default_errno_ret(errno_value(
            &profile.default_errno,
            profile.default_errno_ret,
        )?)
        .set_architectures((!arches.is_empty()).then_some(arches))
        .set_flags((!profile.flags.is_empty()).then(|| profile.flags.clone()))
        .set_listener_path(profile.listener_path.clone())
        .set_listener_metadata(profile.listener_metadata.clone())
        .set_syscalls(Some(syscalls));
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules_for<'a>(s: &'a LinuxSeccomp, name: &str) -> Vec<&'a LinuxSyscall> {
        s.syscalls()
            .iter()
            .flatten()
            .filter(|r| r.names().iter().any(|n| n == name))
            .collect()
    }

    #[test]
    fn builtin_is_containers_common_default() {
        let p = Profile::builtin();
        assert_eq!(p.default_action, Some(LinuxSeccompAction::ScmpActErrno));
        assert_eq!(p.default_errno_ret, Some(38));
        assert!(p
            .arch_map
            .iter()
            .any(|m| m.architecture == Arch::ScmpArchAarch64
                && m.sub_architectures == [Arch::ScmpArchArm]));
        let s = resolve(&p, crate::run::spec::DEFAULT_CAPABILITIES, "amd64", None)
            .unwrap()
            .unwrap();
        assert_eq!(
            s.architectures().as_deref(),
            Some(&[Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32][..])
        );
        assert_eq!(s.default_errno_ret(), Some(38));
        // Allowed unconditionally, refused with EPERM, missing (so ENOSYS).
        assert!(rules_for(&s, "mount")
            .iter()
            .any(|r| r.action() == LinuxSeccompAction::ScmpActAllow && r.args().is_none()));
        let kexec = rules_for(&s, "kexec_load");
        assert_eq!(kexec.len(), 1);
        assert_eq!(kexec[0].errno_ret(), Some(1));
        assert!(rules_for(&s, "add_key").is_empty());
        // arch_prctl is for amd64 and x32 only.
        assert!(!rules_for(&s, "arch_prctl").is_empty());
        let arm = resolve(&p, crate::run::spec::DEFAULT_CAPABILITIES, "arm64", None)
            .unwrap()
            .unwrap();
        assert!(rules_for(&arm, "arch_prctl").is_empty());
        assert!(!rules_for(&arm, "set_tls").is_empty());
        assert_eq!(
            arm.architectures().as_deref(),
            Some(&[Arch::ScmpArchAarch64, Arch::ScmpArchArm][..])
        );
    }

    #[test]
    fn capability_conditional_rules() {
        let p = Profile::builtin();
        let default = resolve(&p, crate::run::spec::DEFAULT_CAPABILITIES, "amd64", None)
            .unwrap()
            .unwrap();
        let setns = rules_for(&default, "setns");
        assert!(setns
            .iter()
            .any(|r| r.action() == LinuxSeccompAction::ScmpActErrno && r.errno_ret() == Some(1)));
        let mut admin = crate::run::spec::DEFAULT_CAPABILITIES.to_vec();
        admin.push("CAP_SYS_ADMIN");
        let s = resolve(&p, &admin, "amd64", None).unwrap().unwrap();
        assert!(rules_for(&s, "setns")
            .iter()
            .all(|r| r.action() == LinuxSeccompAction::ScmpActAllow));
        // socket(AF_NETLINK, *, NETLINK_AUDIT) is EINVAL without CAP_AUDIT_WRITE.
        let none = resolve(&p, &[], "amd64", None).unwrap().unwrap();
        assert!(rules_for(&none, "socket")
            .iter()
            .any(|r| r.errno_ret() == Some(22) && r.args().as_ref().is_some_and(|a| a.len() == 2)));
        // CAP_SYS_CHROOT is a default capability: chroot is allowed, no EPERM rule.
        assert!(rules_for(&default, "chroot")
            .iter()
            .all(|r| r.action() == LinuxSeccompAction::ScmpActAllow));
        assert!(rules_for(&none, "chroot")
            .iter()
            .all(|r| r.action() == LinuxSeccompAction::ScmpActErrno));
    }

    #[test]
    fn errno_names_min_kernel_and_errors() {
        let p: Profile = serde_json::from_value(serde_json::json!({
            "defaultAction": "SCMP_ACT_ERRNO", "defaultErrno": "EPERM",
            "architectures": ["SCMP_ARCH_X86_64"],
            "syscalls": [
                {"names": ["getpid"], "action": "SCMP_ACT_ALLOW", "args": null},
                {"name": "getppid", "action": "SCMP_ACT_ERRNO", "errno": "EACCES"},
                {"names": ["new"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "5.10"}},
                {"names": ["old"], "action": "SCMP_ACT_ALLOW", "excludes": {"minKernel": "5.10"}}
            ]
        }))
        .unwrap();
        let s = resolve(&p, &[], "amd64", Some((5, 4))).unwrap().unwrap();
        assert_eq!(s.default_errno_ret(), Some(libc::EPERM as u32));
        assert_eq!(
            rules_for(&s, "getppid")[0].errno_ret(),
            Some(libc::EACCES as u32)
        );
        assert!(rules_for(&s, "new").is_empty());
        assert!(!rules_for(&s, "old").is_empty());
        let s = resolve(&p, &[], "amd64", Some((6, 1))).unwrap().unwrap();
        assert!(!rules_for(&s, "new").is_empty());
        assert!(rules_for(&s, "old").is_empty());
        assert_eq!(parse_version("6.1.0-27-amd64"), Some((6, 1)));

        let bad = |v: serde_json::Value| {
            let p: Profile = serde_json::from_value(v).unwrap();
            resolve(&p, &[], "amd64", None).unwrap_err().to_string()
        };
        assert!(bad(serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64"], "archMap": [{"architecture": "SCMP_ARCH_X86_64"}]}))
        .contains("use either"));
        assert!(bad(serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"name": "a", "names": ["b"], "action": "SCMP_ACT_ALLOW"}]}))
        .contains("use either"));
        assert!(bad(
            serde_json::json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrno": "EWHAT"})
        )
        .contains("unknown errno"));
        // An empty profile is no filter.
        assert!(resolve(&Profile::default(), &[], "amd64", None)
            .unwrap()
            .is_none());
        // A profile file that is not JSON names itself.
        assert!(Profile::parse(b"{", "/p.json")
            .unwrap_err()
            .to_string()
            .contains("/p.json"));
    }
}
