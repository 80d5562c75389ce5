//! The embedded runtime's seccomp filter: the spec's `linux.seccomp` compiled by libseccomp,
//! rule by rule as runc 1.1 does it (`libcontainer/seccomp/seccomp_linux.go`), and loaded as
//! runc loads it (`patchbpf`), so a RUN gets the same answers under hod as under buildah with
//! runc.
//!
//! ```text
//!  LinuxSeccomp ──compile──► libseccomp context ──export──► BPF ──┐
//!   default action            + architectures (native,            │ ENOSYS stub in front
//!   syscalls[names]             x86, x32 / arm …)                 ▼ (runc's patchbpf)
//!                             + one rule per name     install: seccomp(2) on this thread
//! ```
//!
//! runc's rules: a rule whose action equals the default is skipped; a name libseccomp does not
//! know is skipped; `SCMP_ACT_ERRNO` without `errnoRet` is `EPERM`; conditions on distinct
//! arguments are one rule (AND), several conditions on the same argument are one rule each (OR).
//! libseccomp decides what two rules for one syscall mean, for both runtimes. When the default
//! action refuses with another errno than ENOSYS, runc puts a stub in front of libseccomp's
//! program that answers ENOSYS for syscall numbers above the highest one the profile names, per
//! architecture (so a program probing a syscall newer than the profile falls back); hod builds
//! the same stub.
#![allow(unsafe_code)] // installing the BPF program: the one block has a `// SAFETY:` line
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
    // Flags are passed to seccomp(2) by `install`; runc 1.1 refuses every flag, hod takes LOG.
    for flag in profile.flags().iter().flatten() {
        if *flag != LinuxSeccompFilterFlag::SeccompFilterFlagLog {
            return Err(invalid(format!("seccomp flag {flag:?} is not supported")));
        }
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

const X32_SYSCALL_BIT: u32 = 0x4000_0000;
const RET_ERRNO_ENOSYS: u32 = 0x0005_0000 | libc::ENOSYS as u32;

/// The kernel's `AUDIT_ARCH_*` value of a libseccomp architecture (x32 shares x86_64's).
fn audit_arch(arch: ScmpArch) -> Option<u32> {
    Some(match arch {
        ScmpArch::X86 => 0x4000_0003,
        ScmpArch::X8664 | ScmpArch::X32 => 0xc000_003e,
        ScmpArch::Arm => 0x4000_0028,
        ScmpArch::Aarch64 => 0xc000_00b7,
        ScmpArch::Riscv64 => 0xc000_00f3,
        ScmpArch::Ppc => 0x0000_0014,
        ScmpArch::Ppc64 => 0x8000_0015,
        ScmpArch::Ppc64Le => 0xc000_0015,
        ScmpArch::S390 => 0x0000_0016,
        ScmpArch::S390X => 0x8000_0016,
        ScmpArch::Mips => 0x0000_0008,
        ScmpArch::Mipsel => 0x4000_0008,
        ScmpArch::Mips64 => 0x8000_0008,
        ScmpArch::Mipsel64 => 0xc000_0008,
        ScmpArch::Mips64N32 => 0xa000_0008,
        ScmpArch::Mipsel64N32 => 0xe000_0008,
        _ => return None,
    })
}

/// The highest syscall number the profile names, per architecture of its `architectures`
/// (runc's `findLastSyscalls`): (audit arch, libseccomp arch, number).
fn last_syscalls(profile: &LinuxSeccomp) -> io::Result<Vec<(u32, ScmpArch, u32)>> {
    let mut out: Vec<(u32, ScmpArch, u32)> = Vec::new();
    for a in profile.architectures().iter().flatten() {
        let name = serde_json::to_value(a)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let mut arch = ScmpArch::from_str(&name)
            .map_err(|e| invalid(format!("seccomp architecture {name}: {e}")))?;
        if arch == ScmpArch::Native {
            arch = ScmpArch::native();
        }
        let audit = audit_arch(arch).ok_or_else(|| {
            invalid(format!(
                "seccomp architecture {name} has no AUDIT_ARCH value"
            ))
        })?;
        if out.iter().any(|(_, a, _)| *a == arch) {
            continue;
        }
        let last = profile
            .syscalls()
            .iter()
            .flatten()
            .flat_map(|r| r.names())
            .filter_map(|n| ScmpSyscall::from_name_by_arch(n, arch).ok())
            .map(i32::from)
            .filter(|n| *n > 0)
            .max();
        if let Some(last) = last {
            out.push((audit, arch, last as u32));
        }
    }
    Ok(out)
}

/// A classic-BPF instruction with jumps to labels, resolved by [`assemble`].
#[derive(Clone, Copy)]
enum Op {
    Load(u32),
    Ret(u32),
    /// Jump always.
    Ja(usize),
    /// `A == k`, `A > k`, `A & k != 0`: (k, true label, false label).
    Jeq(u32, usize, usize),
    Jgt(u32, usize, usize),
    Jset(u32, usize, usize),
    /// A label: no instruction.
    Label(usize),
}

fn assemble(ops: &[Op]) -> io::Result<Vec<libc::sock_filter>> {
    let mut at = std::collections::HashMap::new();
    let mut pc = 0usize;
    for op in ops {
        match op {
            Op::Label(l) => {
                at.insert(*l, pc);
            }
            _ => pc += 1,
        }
    }
    let mut out = Vec::new();
    let rel = |from: usize, label: &usize| -> io::Result<usize> {
        at.get(label)
            .and_then(|to| to.checked_sub(from + 1))
            .ok_or_else(|| invalid("seccomp stub: backward or unknown jump".into()))
    };
    let short = |n: usize| -> io::Result<u8> {
        u8::try_from(n).map_err(|_| invalid("seccomp stub: jump too long".into()))
    };
    for op in ops {
        let pc = out.len();
        let insn = |code: u16, jt: u8, jf: u8, k: u32| libc::sock_filter { code, jt, jf, k };
        out.push(match op {
            Op::Label(_) => continue,
            Op::Load(off) => insn(0x20, 0, 0, *off),
            Op::Ret(k) => insn(0x06, 0, 0, *k),
            Op::Ja(l) => insn(0x05, 0, 0, rel(pc, l)? as u32),
            Op::Jeq(k, t, f) => insn(0x15, short(rel(pc, t)?)?, short(rel(pc, f)?)?, *k),
            Op::Jgt(k, t, f) => insn(0x25, short(rel(pc, t)?)?, short(rel(pc, f)?)?, *k),
            Op::Jset(k, t, f) => insn(0x45, short(rel(pc, t)?)?, short(rel(pc, f)?)?, *k),
        });
    }
    Ok(out)
}

/// runc's `-ENOSYS` stub for `profile`, or nothing when the default action allows or already
/// answers ENOSYS. It ends where libseccomp's program starts.
pub fn enosys_stub(profile: &LinuxSeccomp) -> io::Result<Vec<libc::sock_filter>> {
    let default = profile.default_action();
    if profile.default_errno_ret() == Some(libc::ENOSYS as u32)
        || matches!(
            default,
            LinuxSeccompAction::ScmpActAllow
                | LinuxSeccompAction::ScmpActLog
                | LinuxSeccompAction::ScmpActTrace
        )
    {
        return Ok(Vec::new());
    }
    let last = last_syscalls(profile)?;
    let mut audits: Vec<u32> = Vec::new();
    for (a, _, _) in &last {
        if !audits.contains(a) {
            audits.push(*a);
        }
    }
    const FILTER: usize = 0;
    const ENOSYS: usize = 1;
    let (mut next, mut ops) = (2usize, vec![Op::Load(4)]);
    let mut sections = Vec::new();
    for audit in &audits {
        let (here, after) = (next, next + 1);
        next += 2;
        ops.push(Op::Jeq(*audit, here, after));
        ops.push(Op::Label(after));
        sections.push(Op::Label(here));
        sections.push(Op::Load(0));
        let group: Vec<(ScmpArch, u32)> = last
            .iter()
            .filter(|(a, _, _)| a == audit)
            .map(|(_, arch, n)| (*arch, *n))
            .collect();
        let max = |arch| group.iter().find(|(a, _)| *a == arch).map(|(_, n)| *n);
        if *audit == 0xc000_003e {
            let (x64, x32) = (max(ScmpArch::X8664), max(ScmpArch::X32));
            let (is_x32, is_x64) = (next, next + 1);
            next += 2;
            sections.push(Op::Jset(X32_SYSCALL_BIT, is_x32, is_x64));
            sections.push(Op::Label(is_x32));
            sections.push(match x32 {
                Some(n) => Op::Jgt(n, ENOSYS, FILTER),
                None => Op::Ja(FILTER),
            });
            sections.push(Op::Label(is_x64));
            sections.push(match x64 {
                Some(n) => Op::Jgt(n, ENOSYS, FILTER),
                None => Op::Ja(FILTER),
            });
        } else {
            if group
                .iter()
                .any(|(a, _)| matches!(a, ScmpArch::S390 | ScmpArch::S390X))
            {
                // s390's multiplexed syscall 0 is answered ENOSYS, as runc does.
                let past = next;
                next += 1;
                sections.push(Op::Jeq(0, ENOSYS, past));
                sections.push(Op::Label(past));
            }
            let n = group.iter().map(|(_, n)| *n).max().unwrap_or(0);
            sections.push(Op::Jgt(n, ENOSYS, FILTER));
        }
    }
    ops.push(Op::Ja(FILTER));
    ops.extend(sections);
    ops.push(Op::Label(ENOSYS));
    ops.push(Op::Ret(RET_ERRNO_ENOSYS));
    ops.push(Op::Label(FILTER));
    if audits.is_empty() {
        return Ok(Vec::new());
    }
    assemble(&ops)
}

/// The program hod installs: runc's ENOSYS stub (if any) and libseccomp's filter.
pub fn program(
    profile: &LinuxSeccomp,
    ctx: &ScmpFilterContext,
) -> io::Result<Vec<libc::sock_filter>> {
    let fd = rustix::fs::memfd_create("seccomp-bpf", rustix::fs::MemfdFlags::CLOEXEC)?;
    let mut file = std::fs::File::from(fd);
    ctx.export_bpf(&file)
        .map_err(|e| err("exporting the seccomp filter", e))?;
    let mut raw = Vec::new();
    std::io::Seek::rewind(&mut file)?;
    std::io::Read::read_to_end(&mut file, &mut raw)?;
    let mut prog = enosys_stub(profile)?;
    prog.extend(raw.chunks_exact(8).map(|c| libc::sock_filter {
        code: u16::from_ne_bytes([c[0], c[1]]),
        jt: c[2],
        jf: c[3],
        k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
    }));
    if prog.len() > u16::MAX as usize {
        return Err(invalid("seccomp program too long".into()));
    }
    Ok(prog)
}

/// Install `prog` on this thread (and its future children), with `SECCOMP_FILTER_FLAG_LOG`
/// when the profile asks for it. Needs `no_new_privs` or `CAP_SYS_ADMIN` in the current user
/// namespace.
pub fn install(profile: &LinuxSeccomp, prog: &[libc::sock_filter]) -> io::Result<()> {
    let mut flags: libc::c_ulong = 0;
    for flag in profile.flags().iter().flatten() {
        if *flag == LinuxSeccompFilterFlag::SeccompFilterFlagLog {
            flags |= libc::SECCOMP_FILTER_FLAG_LOG;
        }
    }
    let fprog = libc::sock_fprog {
        len: prog.len() as u16,
        filter: prog.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: `fprog` points at `prog`, which outlives the call and is not written through
    // the pointer; the kernel copies the program during seccomp(2) and keeps no pointer to it.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER as libc::c_ulong,
            flags,
            &fprog as *const libc::sock_fprog,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
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
    fn enosys_stub_for_other_default_errnos() {
        // containers/common's profile with the default errno left out (so EPERM): runc puts
        // its stub in front, and syscalls above the highest named one get ENOSYS, per ABI.
        let mut p = Profile::builtin();
        p.default_errno_ret = None;
        p.default_errno = None;
        let s = resolve(&p, DEFAULT_CAPABILITIES, "amd64", None)
            .unwrap()
            .unwrap();
        let stub = enosys_stub(&s).unwrap();
        assert!(!stub.is_empty());
        let prog: Vec<(u16, u8, u8, u32)> = program(&s, &compile(&s).unwrap())
            .unwrap()
            .iter()
            .map(|i| (i.code, i.jt, i.jf, i.k))
            .collect();
        let x = AUDIT_ARCH_X86_64;
        let cases: &[(u32, u32, u32, &str)] = &[
            (x, 1000, ERRNO | 38, "x86_64 above the profile"),
            (x, 248, ERRNO | 1, "add_key, below it: the default"),
            (x, 165, ALLOW, "mount"),
            (x, 1000 | X32, ERRNO | 38, "x32 above the profile"),
            (x, 248 | X32, ERRNO | 1, "x32 add_key"),
            (AUDIT_ARCH_I386, 1000, ERRNO | 38, "i386 above the profile"),
            (AUDIT_ARCH_I386, 286, ERRNO | 1, "i386 add_key"),
            (AUDIT_ARCH_I386, 21, ALLOW, "i386 mount"),
        ];
        for (arch, nr, want, what) in cases {
            assert_eq!(eval(&prog, *arch, *nr, [0; 6]), *want, "{what}");
        }
        // No stub with ENOSYS as the default errno, or an allowing default.
        let default = default_for("amd64", DEFAULT_CAPABILITIES);
        assert!(enosys_stub(&default).unwrap().is_empty());
        let allow: LinuxSeccomp = serde_json::from_value(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
            "syscalls": [{"names": ["keyctl"], "action": "SCMP_ACT_ERRNO"}]
        }))
        .unwrap();
        assert!(enosys_stub(&allow).unwrap().is_empty());
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
