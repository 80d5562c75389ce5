//! A small seccomp-BPF compiler for the subset of OCI seccomp profiles hod generates
//! (a default action plus per-syscall rules with `==`, `!=` and masked-`==` argument
//! comparisons), and the installer. x86_64 only: other architectures' syscalls (i386 through
//! `int 0x80`, x32) get the profile's default errno... unless the default is allow, in which
//! case they get `ENOSYS` so that a deny-list cannot be bypassed through another ABI.
#![allow(unsafe_code)] // installing the BPF program: each block has a `// SAFETY:` line
use std::io;

use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompAction, LinuxSeccompOperator};

const BPF_LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
const BPF_JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
const BPF_JGE_K: u16 = 0x35; // BPF_JMP | BPF_JGE | BPF_K
const BPF_AND_K: u16 = 0x54; // BPF_ALU | BPF_AND | BPF_K
const BPF_RET_K: u16 = 0x06; // BPF_RET | BPF_K

const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
const X32_SYSCALL_BIT: u32 = 0x4000_0000;
const RET_ALLOW: u32 = 0x7fff_0000;
const RET_ERRNO: u32 = 0x0005_0000;
const RET_KILL_PROCESS: u32 = 0x8000_0000;
const RET_TRAP: u32 = 0x0003_0000;
const RET_LOG: u32 = 0x7ffc_0000;

/// One BPF instruction (`struct sock_filter`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    /// Opcode.
    pub code: u16,
    /// Jump-if-true offset.
    pub jt: u8,
    /// Jump-if-false offset.
    pub jf: u8,
    /// Operand.
    pub k: u32,
}

fn stmt(code: u16, k: u32) -> Insn {
    Insn {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

/// A jump whose false (or true) target is "the end of this rule block", fixed up later.
const FAIL: u8 = 0xff;

fn action_value(action: LinuxSeccompAction, errno: Option<u32>) -> io::Result<u32> {
    Ok(match action {
        LinuxSeccompAction::ScmpActAllow => RET_ALLOW,
        LinuxSeccompAction::ScmpActErrno => {
            RET_ERRNO | (errno.unwrap_or(libc::EPERM as u32) & 0xffff)
        }
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => 0,
        LinuxSeccompAction::ScmpActKillProcess => RET_KILL_PROCESS,
        LinuxSeccompAction::ScmpActTrap => RET_TRAP,
        LinuxSeccompAction::ScmpActLog => RET_LOG,
        other => {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!("seccomp action {other:?}"),
            ))
        }
    })
}

/// The syscall number of `name` on x86_64, for the names hod's profiles use.
pub fn syscall_nr(name: &str) -> Option<u32> {
    let nr: libc::c_long = match name {
        "_sysctl" => libc::SYS__sysctl,
        "acct" => libc::SYS_acct,
        "add_key" => libc::SYS_add_key,
        "afs_syscall" => libc::SYS_afs_syscall,
        "bpf" => libc::SYS_bpf,
        "chroot" => libc::SYS_chroot,
        "clock_settime" => libc::SYS_clock_settime,
        "create_module" => 174,
        "delete_module" => libc::SYS_delete_module,
        "fanotify_init" => libc::SYS_fanotify_init,
        "finit_module" => libc::SYS_finit_module,
        "get_kernel_syms" => 177,
        "getpmsg" => libc::SYS_getpmsg,
        "init_module" => libc::SYS_init_module,
        "io_pgetevents" => 333,
        "io_uring_enter" => libc::SYS_io_uring_enter,
        "io_uring_register" => libc::SYS_io_uring_register,
        "io_uring_setup" => libc::SYS_io_uring_setup,
        "ioperm" => libc::SYS_ioperm,
        "iopl" => libc::SYS_iopl,
        "kcmp" => libc::SYS_kcmp,
        "kexec_file_load" => libc::SYS_kexec_file_load,
        "kexec_load" => libc::SYS_kexec_load,
        "keyctl" => libc::SYS_keyctl,
        "lookup_dcookie" => libc::SYS_lookup_dcookie,
        "migrate_pages" => libc::SYS_migrate_pages,
        "move_pages" => libc::SYS_move_pages,
        "nfsservctl" => libc::SYS_nfsservctl,
        "open_by_handle_at" => libc::SYS_open_by_handle_at,
        "perf_event_open" => libc::SYS_perf_event_open,
        "process_madvise" => libc::SYS_process_madvise,
        "putpmsg" => libc::SYS_putpmsg,
        "query_module" => 178,
        "quotactl" => libc::SYS_quotactl,
        "quotactl_fd" => 443,
        "request_key" => libc::SYS_request_key,
        "security" => libc::SYS_security,
        "set_mempolicy_home_node" => 450,
        "setdomainname" => libc::SYS_setdomainname,
        "sethostname" => libc::SYS_sethostname,
        "setns" => libc::SYS_setns,
        "settimeofday" => libc::SYS_settimeofday,
        "socket" => libc::SYS_socket,
        "swapoff" => libc::SYS_swapoff,
        "swapon" => libc::SYS_swapon,
        "sysfs" => libc::SYS_sysfs,
        "tuxcall" => libc::SYS_tuxcall,
        "uselib" => libc::SYS_uselib,
        "userfaultfd" => libc::SYS_userfaultfd,
        "ustat" => libc::SYS_ustat,
        "vhangup" => libc::SYS_vhangup,
        "vmsplice" => libc::SYS_vmsplice,
        "vserver" => libc::SYS_vserver,
        "unshare" => libc::SYS_unshare,
        "mount" => libc::SYS_mount,
        "umount2" => libc::SYS_umount2,
        "pivot_root" => libc::SYS_pivot_root,
        "ptrace" => libc::SYS_ptrace,
        "personality" => libc::SYS_personality,
        "reboot" => libc::SYS_reboot,
        "getpid" => libc::SYS_getpid,
        _ => return None,
    };
    Some(nr as u32)
}

/// Compile a profile into a BPF program. Names the table does not know are skipped
/// (they do not exist on this architecture or hod does not generate them).
pub fn compile(profile: &LinuxSeccomp) -> io::Result<Vec<Insn>> {
    let default = action_value(profile.default_action(), profile.default_errno_ret())?;
    let foreign = if default == RET_ALLOW {
        RET_ERRNO | libc::ENOSYS as u32
    } else {
        default
    };
    let mut prog = vec![
        stmt(BPF_LD_W_ABS, 4),
        Insn {
            code: BPF_JEQ_K,
            jt: 1,
            jf: 0,
            k: AUDIT_ARCH_X86_64,
        },
        stmt(BPF_RET_K, foreign),
        stmt(BPF_LD_W_ABS, 0),
        Insn {
            code: BPF_JGE_K,
            jt: 0,
            jf: 1,
            k: X32_SYSCALL_BIT,
        },
        stmt(BPF_RET_K, foreign),
    ];
    for rule in profile.syscalls().iter().flatten() {
        let ret = action_value(rule.action(), rule.errno_ret())?;
        for name in rule.names() {
            let Some(nr) = syscall_nr(name) else {
                tracing::debug!("seccomp: skipping unknown syscall {name}");
                continue;
            };
            let mut block = vec![
                stmt(BPF_LD_W_ABS, 0),
                Insn {
                    code: BPF_JEQ_K,
                    jt: 0,
                    jf: FAIL,
                    k: nr,
                },
            ];
            for arg in rule.args().iter().flatten() {
                if arg.index() > 5 {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        "seccomp argument index out of range",
                    ));
                }
                let lo = 16 + 8 * arg.index() as u32;
                let hi = lo + 4;
                let v = arg.value();
                match arg.op() {
                    LinuxSeccompOperator::ScmpCmpEq => block.extend([
                        stmt(BPF_LD_W_ABS, hi),
                        Insn {
                            code: BPF_JEQ_K,
                            jt: 0,
                            jf: FAIL,
                            k: (v >> 32) as u32,
                        },
                        stmt(BPF_LD_W_ABS, lo),
                        Insn {
                            code: BPF_JEQ_K,
                            jt: 0,
                            jf: FAIL,
                            k: v as u32,
                        },
                    ]),
                    LinuxSeccompOperator::ScmpCmpNe => block.extend([
                        stmt(BPF_LD_W_ABS, hi),
                        Insn {
                            code: BPF_JEQ_K,
                            jt: 0,
                            jf: 2,
                            k: (v >> 32) as u32,
                        },
                        stmt(BPF_LD_W_ABS, lo),
                        Insn {
                            code: BPF_JEQ_K,
                            jt: FAIL,
                            jf: 0,
                            k: v as u32,
                        },
                    ]),
                    LinuxSeccompOperator::ScmpCmpMaskedEq => {
                        let want = arg.value_two().unwrap_or(0);
                        block.extend([
                            stmt(BPF_LD_W_ABS, hi),
                            stmt(BPF_AND_K, (v >> 32) as u32),
                            Insn {
                                code: BPF_JEQ_K,
                                jt: 0,
                                jf: FAIL,
                                k: (want >> 32) as u32,
                            },
                            stmt(BPF_LD_W_ABS, lo),
                            stmt(BPF_AND_K, v as u32),
                            Insn {
                                code: BPF_JEQ_K,
                                jt: 0,
                                jf: FAIL,
                                k: want as u32,
                            },
                        ])
                    }
                    other => {
                        return Err(io::Error::new(
                            io::ErrorKind::Unsupported,
                            format!(
                            "seccomp operator {other:?} is not supported by the embedded runtime"
                        ),
                        ))
                    }
                }
            }
            block.push(stmt(BPF_RET_K, ret));
            let len = block.len();
            for (i, insn) in block.iter_mut().enumerate() {
                // FAIL jumps land on the first instruction after the block.
                let to_end = (len - i - 1) as u8;
                if insn.jf == FAIL {
                    insn.jf = to_end;
                }
                if insn.jt == FAIL {
                    insn.jt = to_end;
                }
            }
            prog.extend(block);
        }
    }
    prog.push(stmt(BPF_RET_K, default));
    if prog.len() > 4096 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "seccomp program too long",
        ));
    }
    Ok(prog)
}

/// Install the program for this thread (and its future children). Needs `no_new_privs` or
/// `CAP_SYS_ADMIN` in the current user namespace.
pub fn install(prog: &[Insn]) -> io::Result<()> {
    let mut filters: Vec<libc::sock_filter> = prog
        .iter()
        .map(|i| libc::sock_filter {
            code: i.code,
            jt: i.jt,
            jf: i.jf,
            k: i.k,
        })
        .collect();
    let fprog = libc::sock_fprog {
        len: filters.len() as u16,
        filter: filters.as_mut_ptr(),
    };
    // SAFETY: `fprog` points at `filters`, which outlives the call; the kernel copies the
    // program during prctl and keeps no pointer to our memory.
    let rc = unsafe {
        libc::prctl(
            libc::PR_SET_SECCOMP,
            libc::SECCOMP_MODE_FILTER as libc::c_ulong,
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

    /// A tiny interpreter for the instructions `compile` emits, to test programs without
    /// installing them.
    fn eval(prog: &[Insn], arch: u32, nr: u32, args: [u64; 6]) -> u32 {
        let mut data = [0u8; 64];
        data[0..4].copy_from_slice(&nr.to_le_bytes());
        data[4..8].copy_from_slice(&arch.to_le_bytes());
        for (i, a) in args.iter().enumerate() {
            data[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_le_bytes());
        }
        let mut acc = 0u32;
        let mut pc = 0usize;
        loop {
            let i = prog[pc];
            pc += 1;
            match i.code {
                BPF_LD_W_ABS => {
                    acc =
                        u32::from_le_bytes(data[i.k as usize..i.k as usize + 4].try_into().unwrap())
                }
                BPF_AND_K => acc &= i.k,
                BPF_JEQ_K => pc += if acc == i.k { i.jt } else { i.jf } as usize,
                BPF_JGE_K => pc += if acc >= i.k { i.jt } else { i.jf } as usize,
                BPF_RET_K => return i.k,
                c => panic!("unknown opcode {c:#x}"),
            }
        }
    }

    fn profile() -> LinuxSeccomp {
        serde_json::from_value(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [
                {"names": ["keyctl", "add_key"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
                {"names": ["socket"], "action": "SCMP_ACT_ERRNO", "errnoRet": 22,
                 "args": [{"index": 0, "value": 16, "op": "SCMP_CMP_EQ"}, {"index": 2, "value": 9, "op": "SCMP_CMP_EQ"}]},
                {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38,
                 "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_NE"}]},
                {"names": ["unshare"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
                 "args": [{"index": 0, "value": 0x10000000, "valueTwo": 0x10000000, "op": "SCMP_CMP_MASKED_EQ"}]},
                {"names": ["no_such_syscall"], "action": "SCMP_ACT_ERRNO"}
            ]
        }))
        .unwrap()
    }

    #[test]
    fn table() {
        let prog = compile(&profile()).unwrap();
        let x = AUDIT_ARCH_X86_64;
        let n = |s| syscall_nr(s).unwrap();
        let cases: &[(u32, u32, [u64; 6], u32)] = &[
            (x, n("keyctl"), [0; 6], RET_ERRNO | 1),
            (x, n("add_key"), [0; 6], RET_ERRNO | 1),
            (x, n("getpid"), [0; 6], RET_ALLOW),
            (x, n("socket"), [16, 3, 9, 0, 0, 0], RET_ERRNO | 22),
            (x, n("socket"), [16, 3, 0, 0, 0, 0], RET_ALLOW),
            (x, n("socket"), [2, 1, 9, 0, 0, 0], RET_ALLOW),
            (x, n("socket"), [16 | (1 << 32), 3, 9, 0, 0, 0], RET_ALLOW),
            (x, n("personality"), [0, 0, 0, 0, 0, 0], RET_ALLOW),
            (x, n("personality"), [8, 0, 0, 0, 0, 0], RET_ERRNO | 38),
            (
                x,
                n("personality"),
                [1 << 32, 0, 0, 0, 0, 0],
                RET_ERRNO | 38,
            ),
            (
                x,
                n("unshare"),
                [0x10000000 | 0x20000, 0, 0, 0, 0, 0],
                RET_ERRNO | 1,
            ),
            (x, n("unshare"), [0x20000, 0, 0, 0, 0, 0], RET_ALLOW),
            (x, n("keyctl") | X32_SYSCALL_BIT, [0; 6], RET_ERRNO | 38),
            (0x4000_0003, 1, [0; 6], RET_ERRNO | 38),
        ];
        for (i, (arch, nr, args, want)) in cases.iter().enumerate() {
            assert_eq!(eval(&prog, *arch, *nr, *args), *want, "case {i}");
        }
    }

    #[test]
    fn unsupported_operator_is_an_error() {
        let p: LinuxSeccomp = serde_json::from_value(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["keyctl"], "action": "SCMP_ACT_ERRNO",
                          "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_GT"}]}]
        }))
        .unwrap();
        assert!(compile(&p).is_err());
    }
}
