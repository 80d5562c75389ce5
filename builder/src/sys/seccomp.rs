//! The embedded runtime's seccomp filter: the spec's `linux.seccomp` compiled by libseccomp,
//! rule by rule as runc 1.1 does it (`libcontainer/seccomp/seccomp_linux.go`), so a RUN gets
//! the same answers under hod as under buildah with runc.
//!
//! ```text
//!  LinuxSeccomp ──compile──► libseccomp context ──load──► seccomp(2) on this thread
//!   default action            + architectures (native, x86, x32 / arm …)
//!   syscalls[names]           + one rule per name (native number, translated per arch)
//! ```
//!
//! runc's rules: a rule whose action equals the default is skipped; a name libseccomp does not
//! know is skipped; `SCMP_ACT_ERRNO` without `errnoRet` is `EPERM`; conditions on distinct
//! arguments are one rule (AND), several conditions on the same argument are one rule each (OR).
//! libseccomp decides what two rules for one syscall mean, for both runtimes.
//! No `unsafe` here: the libseccomp crate wraps the C library.
use std::io;
use std::str::FromStr;

use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};
use oci_spec::runtime::{
    LinuxSeccomp, LinuxSeccompAction, LinuxSeccompFilterFlag, LinuxSeccompOperator,
};

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

fn err(what: &str, e: libseccomp::error::SeccompError) -> io::Error {
    io::Error::other(format!("{what}: {e}"))
}

fn action(action: LinuxSeccompAction, errno: Option<u32>) -> io::Result<ScmpAction> {
    let errno = errno.map(|e| e as i32).unwrap_or(libc::EPERM);
    Ok(match action {
        LinuxSeccompAction::ScmpActAllow => ScmpAction::Allow,
        LinuxSeccompAction::ScmpActErrno => ScmpAction::Errno(errno),
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            ScmpAction::KillThread
        }
        LinuxSeccompAction::ScmpActKillProcess => ScmpAction::KillProcess,
        LinuxSeccompAction::ScmpActTrap => ScmpAction::Trap,
        LinuxSeccompAction::ScmpActTrace => ScmpAction::Trace(errno as u16),
        LinuxSeccompAction::ScmpActLog => ScmpAction::Log,
        LinuxSeccompAction::ScmpActNotify => {
            return Err(invalid(
                "seccomp action SCMP_ACT_NOTIFY needs a seccomp agent, which the embedded runtime does not have".into(),
            ))
        }
    })
}

fn compare(op: LinuxSeccompOperator, value: u64) -> ScmpCompareOp {
    match op {
        LinuxSeccompOperator::ScmpCmpNe => ScmpCompareOp::NotEqual,
        LinuxSeccompOperator::ScmpCmpLt => ScmpCompareOp::Less,
        LinuxSeccompOperator::ScmpCmpLe => ScmpCompareOp::LessOrEqual,
        LinuxSeccompOperator::ScmpCmpEq => ScmpCompareOp::Equal,
        LinuxSeccompOperator::ScmpCmpGe => ScmpCompareOp::GreaterEqual,
        LinuxSeccompOperator::ScmpCmpGt => ScmpCompareOp::Greater,
        LinuxSeccompOperator::ScmpCmpMaskedEq => ScmpCompareOp::MaskedEqual(value),
    }
}

/// Compile `profile` for the native architecture plus the profile's `architectures`.
pub fn compile(profile: &LinuxSeccomp) -> io::Result<ScmpFilterContext> {
    compile_for(profile, None)
}

/// Compile `profile`; `arches`, when given, replaces the native architecture (to inspect the
/// filter another machine would get; syscall names are still resolved on the native one).
pub fn compile_for(
    profile: &LinuxSeccomp,
    arches: Option<&[ScmpArch]>,
) -> io::Result<ScmpFilterContext> {
    let default = action(profile.default_action(), profile.default_errno_ret())?;
    let mut ctx =
        ScmpFilterContext::new(default).map_err(|e| err("creating the seccomp filter", e))?;
    if let Some(list) = arches {
        for a in list {
            ctx.add_arch(*a)
                .map_err(|e| err("adding a seccomp architecture", e))?;
        }
        if !list.contains(&ScmpArch::native()) {
            ctx.remove_arch(ScmpArch::native())
                .map_err(|e| err("removing the native seccomp architecture", e))?;
        }
    }
    for a in profile.architectures().iter().flatten() {
        let name = serde_json::to_value(a)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let arch = ScmpArch::from_str(&name)
            .map_err(|e| invalid(format!("seccomp architecture {name}: {e}")))?;
        if arches.is_none() {
            ctx.add_arch(arch)
                .map_err(|e| err(&format!("adding seccomp architecture {name}"), e))?;
        }
    }
    // The runtime sets no_new_privs itself when the spec asks for it.
    ctx.set_ctl_nnp(false)
        .map_err(|e| err("setting the seccomp filter's NNP attribute", e))?;
    for flag in profile.flags().iter().flatten() {
        match flag {
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => ctx.set_ctl_log(true),
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => ctx.set_ctl_ssb(true),
            other => return Err(invalid(format!("seccomp flag {other:?} is not supported"))),
        }
        .map_err(|e| err("setting a seccomp flag", e))?;
    }
    for rule in profile.syscalls().iter().flatten() {
        let act = action(rule.action(), rule.errno_ret())?;
        if act == default {
            continue;
        }
        let conds: Vec<(usize, ScmpArgCompare)> = rule
            .args()
            .iter()
            .flatten()
            .map(|a| {
                let (datum, mask) = match a.op() {
                    LinuxSeccompOperator::ScmpCmpMaskedEq => {
                        (a.value_two().unwrap_or(0), a.value())
                    }
                    _ => (a.value(), 0),
                };
                (
                    a.index(),
                    ScmpArgCompare::new(a.index() as u32, compare(a.op(), mask), datum),
                )
            })
            .collect();
        let same_arg_twice = (0..6).any(|i| conds.iter().filter(|(j, _)| *j == i).count() > 1);
        for name in rule.names() {
            let Ok(nr) = ScmpSyscall::from_name(name) else {
                tracing::debug!("seccomp: unknown syscall {name} ignored");
                continue;
            };
            let added = if conds.is_empty() {
                ctx.add_rule(act, nr)
            } else if same_arg_twice {
                conds
                    .iter()
                    .try_for_each(|(_, c)| ctx.add_rule_conditional(act, nr, &[*c]).map(|_| ()))
                    .map(|()| &mut ctx)
            } else {
                let all: Vec<ScmpArgCompare> = conds.iter().map(|(_, c)| *c).collect();
                ctx.add_rule_conditional(act, nr, &all)
            };
            added.map_err(|e| err(&format!("adding the seccomp rule for {name}"), e))?;
        }
    }
    Ok(ctx)
}

/// Install the filter on this thread (and its future children). Needs `no_new_privs` or
/// `CAP_SYS_ADMIN` in the current user namespace.
pub fn install(ctx: &ScmpFilterContext) -> io::Result<()> {
    ctx.load().map_err(|e| err("loading the seccomp filter", e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::seccomp::{resolve, Profile};
    use crate::run::spec::DEFAULT_CAPABILITIES;
    use std::io::{Read, Seek};

    const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
    const AUDIT_ARCH_I386: u32 = 0x4000_0003;
    const AUDIT_ARCH_AARCH64: u32 = 0xc000_00b7;
    const AUDIT_ARCH_ARM: u32 = 0x4000_0028;
    const X32: u32 = 0x4000_0000;
    const ALLOW: u32 = 0x7fff_0000;
    const ERRNO: u32 = 0x0005_0000;

    /// A classic-BPF interpreter for the instructions libseccomp emits, to check a filter's
    /// answers for another architecture without running on it.
    fn eval(prog: &[(u16, u8, u8, u32)], arch: u32, nr: u32, args: [u64; 6]) -> u32 {
        let mut data = [0u8; 64];
        data[0..4].copy_from_slice(&nr.to_le_bytes());
        data[4..8].copy_from_slice(&arch.to_le_bytes());
        for (i, a) in args.iter().enumerate() {
            data[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_le_bytes());
        }
        let (mut a, mut x, mut mem) = (0u32, 0u32, [0u32; 16]);
        let mut pc = 0usize;
        loop {
            let (code, jt, jf, k) = prog[pc];
            pc += 1;
            let jump = |cond: bool| if cond { jt as usize } else { jf as usize };
            match code {
                0x20 => {
                    a = u32::from_le_bytes(data[k as usize..k as usize + 4].try_into().unwrap())
                }
                0x00 => a = k,
                0x01 => x = k,
                0x60 => a = mem[k as usize],
                0x61 => x = mem[k as usize],
                0x02 => mem[k as usize] = a,
                0x03 => mem[k as usize] = x,
                0x54 => a &= k,
                0x5c => a &= x,
                0x44 => a |= k,
                0x07 => x = a,
                0x87 => a = x,
                0x05 => pc += k as usize,
                0x15 => pc += jump(a == k),
                0x25 => pc += jump(a > k),
                0x35 => pc += jump(a >= k),
                0x45 => pc += jump(a & k != 0),
                0x1d => pc += jump(a == x),
                0x2d => pc += jump(a > x),
                0x3d => pc += jump(a >= x),
                0x06 => return k,
                0x16 => return a,
                c => panic!("opcode {c:#x} not interpreted"),
            }
        }
    }

    fn bpf(ctx: &ScmpFilterContext) -> Vec<(u16, u8, u8, u32)> {
        let mut f = tempfile::tempfile().unwrap();
        ctx.export_bpf(&f).unwrap();
        f.rewind().unwrap();
        let mut raw = Vec::new();
        f.read_to_end(&mut raw).unwrap();
        raw.chunks(8)
            .map(|c| {
                (
                    u16::from_ne_bytes([c[0], c[1]]),
                    c[2],
                    c[3],
                    u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
                )
            })
            .collect()
    }

    fn default_for(arch: &str, caps: &[&str]) -> LinuxSeccomp {
        resolve(&Profile::builtin(), caps, arch, None)
            .unwrap()
            .unwrap()
    }

    #[test]
    fn x86_64_with_its_compat_abis() {
        let prog = bpf(&compile(&default_for("amd64", DEFAULT_CAPABILITIES)).unwrap());
        let x = AUDIT_ARCH_X86_64;
        let cases: &[(u32, u32, [u64; 6], u32, &str)] = &[
            (x, 165, [0; 6], ALLOW, "mount"),
            (x, 272, [0; 6], ALLOW, "unshare"),
            (x, 101, [0; 6], ALLOW, "ptrace"),
            (x, 246, [0; 6], ERRNO | 1, "kexec_load"),
            // setns is in the allow list and in the EPERM rule without CAP_SYS_ADMIN: for
            // libseccomp (so runc too) the first rule stands, the kernel checks the capability.
            (x, 308, [0; 6], ALLOW, "setns"),
            (
                x,
                170,
                [0; 6],
                ERRNO | 1,
                "sethostname without CAP_SYS_ADMIN",
            ),
            (x, 321, [0; 6], ERRNO | 1, "bpf without CAP_SYS_ADMIN"),
            (x, 248, [0; 6], ERRNO | 38, "add_key"),
            (x, 425, [0; 6], ERRNO | 38, "io_uring_setup"),
            (x, 135, [0; 6], ALLOW, "personality(PER_LINUX)"),
            (
                x,
                135,
                [8, 0, 0, 0, 0, 0],
                ALLOW,
                "personality(PER_LINUX32)",
            ),
            (
                x,
                135,
                [0x10, 0, 0, 0, 0, 0],
                ERRNO | 38,
                "personality(other)",
            ),
            (
                x,
                41,
                [16, 3, 9, 0, 0, 0],
                ERRNO | 22,
                "socket(AF_NETLINK, NETLINK_AUDIT)",
            ),
            (x, 41, [2, 1, 0, 0, 0, 0], ALLOW, "socket(AF_INET)"),
            (x, 5000, [0; 6], ERRNO | 38, "an unknown number"),
            (x, 165 | X32, [0; 6], ALLOW, "x32 mount"),
            (x, 167 | X32, [0; 6], ERRNO | 1, "x32 swapon"),
            (AUDIT_ARCH_I386, 21, [0; 6], ALLOW, "i386 mount"),
            (AUDIT_ARCH_I386, 283, [0; 6], ERRNO | 1, "i386 kexec_load"),
            (AUDIT_ARCH_I386, 286, [0; 6], ERRNO | 38, "i386 add_key"),
        ];
        for (arch, nr, args, want, what) in cases {
            assert_eq!(eval(&prog, *arch, *nr, *args), *want, "{what}");
        }
        let mut admin = DEFAULT_CAPABILITIES.to_vec();
        admin.push("CAP_SYS_ADMIN");
        let prog = bpf(&compile(&default_for("amd64", &admin)).unwrap());
        assert_eq!(
            eval(&prog, x, 308, [0; 6]),
            ALLOW,
            "setns with CAP_SYS_ADMIN"
        );
        assert_eq!(eval(&prog, x, 321, [0; 6]), ALLOW, "bpf with CAP_SYS_ADMIN");
        assert_eq!(
            eval(&prog, x, 246, [0; 6]),
            ERRNO | 1,
            "kexec_load stays refused"
        );
    }

    #[test]
    fn aarch64_with_arm() {
        // The resolution an arm64 machine makes, compiled for aarch64 and arm. Names are
        // resolved on this machine, so only the ones both know are compared.
        let ctx = compile_for(
            &default_for("arm64", DEFAULT_CAPABILITIES),
            Some(&[ScmpArch::Aarch64, ScmpArch::Arm]),
        )
        .unwrap();
        let prog = bpf(&ctx);
        let a = AUDIT_ARCH_AARCH64;
        let cases: &[(u32, u32, [u64; 6], u32, &str)] = &[
            (a, 40, [0; 6], ALLOW, "mount"),
            (a, 97, [0; 6], ALLOW, "unshare"),
            (a, 104, [0; 6], ERRNO | 1, "kexec_load"),
            (a, 161, [0; 6], ERRNO | 1, "sethostname"),
            (a, 217, [0; 6], ERRNO | 38, "add_key"),
            (a, 92, [0; 6], ALLOW, "personality(PER_LINUX)"),
            (
                a,
                92,
                [0x10, 0, 0, 0, 0, 0],
                ERRNO | 38,
                "personality(other)",
            ),
            (AUDIT_ARCH_ARM, 21, [0; 6], ALLOW, "arm mount"),
            (AUDIT_ARCH_ARM, 347, [0; 6], ERRNO | 1, "arm kexec_load"),
            (
                AUDIT_ARCH_X86_64,
                165,
                [0; 6],
                0,
                "x86_64 on this filter is killed",
            ),
        ];
        for (arch, nr, args, want, what) in cases {
            let got = eval(&prog, *arch, *nr, *args);
            if *want == 0 {
                assert!(
                    got & 0xffff_0000 != ALLOW && got & 0xffff_0000 != ERRNO,
                    "{what}: {got:#x}"
                );
            } else {
                assert_eq!(got, *want, "{what}");
            }
        }
    }

    #[test]
    fn arguments_on_one_index_are_alternatives() {
        let s: LinuxSeccomp = serde_json::from_value(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [
                {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
                 "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}, {"index": 0, "value": 2, "op": "SCMP_CMP_EQ"}]},
                {"names": ["unshare"], "action": "SCMP_ACT_ERRNO",
                 "args": [{"index": 0, "value": 0x10000000, "valueTwo": 0x10000000, "op": "SCMP_CMP_MASKED_EQ"}]},
                {"names": ["getpid"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["no_such_syscall"], "action": "SCMP_ACT_ERRNO"}
            ]
        }))
        .unwrap();
        let prog = bpf(&compile(&s).unwrap());
        let x = AUDIT_ARCH_X86_64;
        assert_eq!(eval(&prog, x, 135, [1, 0, 0, 0, 0, 0]), ERRNO | 1);
        assert_eq!(eval(&prog, x, 135, [2, 0, 0, 0, 0, 0]), ERRNO | 1);
        assert_eq!(eval(&prog, x, 135, [3, 0, 0, 0, 0, 0]), ALLOW);
        assert_eq!(eval(&prog, x, 272, [0x10020000, 0, 0, 0, 0, 0]), ERRNO | 1);
        assert_eq!(eval(&prog, x, 272, [0x20000, 0, 0, 0, 0, 0]), ALLOW);
        let notify: LinuxSeccomp =
            serde_json::from_value(serde_json::json!({"defaultAction": "SCMP_ACT_NOTIFY"}))
                .unwrap();
        assert!(compile(&notify).is_err());
    }
}
