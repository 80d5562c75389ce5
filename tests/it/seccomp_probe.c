/* seccomp probe: each syscall once, in its own child, with harmless or invalid arguments;
 * prints "NAME RESULT" with RESULT = OK, an errno name, or SIG<n> when the child was killed. */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef SYS_clone3
#define SYS_clone3 435
#endif
#ifndef SYS_io_uring_setup
#define SYS_io_uring_setup 425
#define SYS_io_uring_enter 426
#define SYS_io_uring_register 427
#endif
#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif
#ifndef SYS_fsopen
#define SYS_fsopen 430
#endif
#ifndef SYS_memfd_secret
#define SYS_memfd_secret 447
#endif
#ifndef SYS_futex_waitv
#define SYS_futex_waitv 449
#endif
#ifndef SYS_process_madvise
#define SYS_process_madvise 440
#endif
#ifndef SYS_landlock_create_ruleset
#define SYS_landlock_create_ruleset 444
#endif

#define BAD ((long)-1)
static const char *missing = "/nonexistent-seccomp-probe/x";

/* abi: 0 = the native syscall(2), 1 = the i386 ABI through int 0x80 (x86_64 only). */
struct probe { const char *name; long nr; long a[6]; int abi; };

static long call(const struct probe *p) {
#if defined(__x86_64__)
    if (p->abi == 1) {
        long r;
        __asm__ volatile("int $0x80" : "=a"(r) : "a"(p->nr), "b"(p->a[0]), "c"(p->a[1]), "d"(p->a[2])
                         : "memory");
        if (r < 0 && r > -4096) { errno = (int)-r; return -1; }
        return r;
    }
#endif
    return syscall(p->nr, p->a[0], p->a[1], p->a[2], p->a[3], p->a[4], p->a[5]);
}

int main(void) {
    const long M = (long)missing;
    struct probe p[] = {
        {"getpid", SYS_getpid, {0}},
        {"mount", SYS_mount, {M, M, M, 0, 0}},
        {"umount2", SYS_umount2, {M, 0}},
        {"pivot_root", SYS_pivot_root, {M, M}},
        {"unshare(0)", SYS_unshare, {0}},
        {"unshare(CLONE_NEWUSER)", SYS_unshare, {CLONE_NEWUSER}},
        {"unshare(CLONE_NEWNS)", SYS_unshare, {CLONE_NEWNS}},
        {"setns", SYS_setns, {BAD, 0}},
        {"clone(CLONE_SIGHAND)", SYS_clone, {CLONE_SIGHAND, 0, 0, 0, 0}},
        {"clone3", SYS_clone3, {0, 0}},
        {"keyctl", SYS_keyctl, {0x7fff, 0, 0, 0, 0}},
        {"add_key", SYS_add_key, {0, 0, 0, 0, 0}},
        {"request_key", SYS_request_key, {0, 0, 0, 0}},
        {"bpf", SYS_bpf, {BAD, 0, 0}},
        {"perf_event_open", SYS_perf_event_open, {0, 0, -1, -1, 0}},
        {"kexec_load", SYS_kexec_load, {0, 0, 0, 0}},
        {"kexec_file_load", SYS_kexec_file_load, {BAD, BAD, 0, 0, 0}},
        {"init_module", SYS_init_module, {0, 0, 0}},
        {"finit_module", SYS_finit_module, {BAD, 0, 0}},
        {"delete_module", SYS_delete_module, {0, 0}},
        {"create_module", 174, {0, 0}},
        {"ptrace", SYS_ptrace, {0xdead, 0, 0, 0}},
        {"personality(0xffffffff)", SYS_personality, {0xffffffff}},
        {"personality(PER_LINUX32)", SYS_personality, {0x0008}},
        {"personality(ADDR_NO_RANDOMIZE)", SYS_personality, {0x0040000}},
        {"io_uring_setup", SYS_io_uring_setup, {0, 0}},
        {"io_uring_enter", SYS_io_uring_enter, {BAD, 0, 0, 0, 0, 0}},
        {"io_uring_register", SYS_io_uring_register, {BAD, 0, 0, 0}},
        {"swapon", SYS_swapon, {M, 0}},
        {"swapoff", SYS_swapoff, {M}},
        {"reboot", SYS_reboot, {0, 0, 0, 0}},
        {"acct", SYS_acct, {M}},
        {"settimeofday", SYS_settimeofday, {1, 1}},
        {"clock_settime", SYS_clock_settime, {BAD, 1}},
        {"open_by_handle_at", SYS_open_by_handle_at, {BAD, 0, 0}},
        {"name_to_handle_at", SYS_name_to_handle_at, {BAD, M, 0, 0, 0}},
        {"userfaultfd", SYS_userfaultfd, {0xffff}},
        {"fanotify_init", SYS_fanotify_init, {0xffffffff, 0}},
        {"lookup_dcookie", SYS_lookup_dcookie, {0, 0, 0}},
        {"quotactl", SYS_quotactl, {0, 0, 0, 0}},
        {"syslog", SYS_syslog, {0xdead, 0, 0}},
        {"vhangup", SYS_vhangup, {0}},
        {"iopl", SYS_iopl, {0}},
        {"ioperm", SYS_ioperm, {0, 0, 0}},
        {"kcmp", SYS_kcmp, {0, 0, BAD, 0, 0}},
        {"process_madvise", SYS_process_madvise, {BAD, 0, 0, 0, 0}},
        {"process_vm_readv", SYS_process_vm_readv, {0x7ffffff0, 0, 0, 0, 0, 0}},
        {"move_pages", SYS_move_pages, {0, 0, 0, 0, 0, 0}},
        {"migrate_pages", SYS_migrate_pages, {0, 0, 0, 0}},
        {"mbind", SYS_mbind, {0, 0, 0xdead, 0, 0, 0}},
        {"set_mempolicy", SYS_set_mempolicy, {0xdead, 0, 0}},
        {"chroot", SYS_chroot, {M}},
        {"sethostname", SYS_sethostname, {M, 100000}},
        {"setdomainname", SYS_setdomainname, {M, 100000}},
        {"uselib", SYS_uselib, {M}},
        {"ustat", SYS_ustat, {0, 0}},
        {"sysfs", SYS_sysfs, {0xdead, 0, 0}},
        {"vmsplice", SYS_vmsplice, {BAD, 0, 0, 0}},
        {"nfsservctl", SYS_nfsservctl, {0, 0, 0}},
        {"_sysctl", SYS__sysctl, {0}},
        {"socket(AF_NETLINK,NETLINK_AUDIT)", SYS_socket, {16, 3, 9}},
        {"socket(AF_VSOCK)", SYS_socket, {40, 1, 0}},
        {"socket(AF_UNIX)", SYS_socket, {1, 1, 0}},
        {"pidfd_getfd", SYS_pidfd_getfd, {BAD, BAD, 0}},
        {"fsopen", SYS_fsopen, {M, 0}},
        {"memfd_secret", SYS_memfd_secret, {0xdead}},
        {"futex_waitv", SYS_futex_waitv, {0, 0, 0, 0, 0}},
        {"landlock_create_ruleset", SYS_landlock_create_ruleset, {0, 0, 0xdead}},
        {"mknod", SYS_mknod, {M, 0020000, 0x0103}},
        {"seccomp(GET_ACTION_AVAIL)", SYS_seccomp, {2, 0, 0}},
        {"syscall(1000)", 1000, {0}},
#if defined(__x86_64__)
        {"x32:getpid", 0x40000000 | 39, {0}},
        {"x32:syscall(1000)", 0x40000000 | 1000, {0}},
        {"i386:getpid", 20, {0}, 1},
        {"i386:mount", 21, {0, 0, 0}, 1},
        {"i386:kexec_load", 283, {0, 0, 0}, 1},
        {"i386:add_key", 286, {0, 0, 0}, 1},
        {"i386:personality(0x0040000)", 136, {0x0040000}, 1},
        {"i386:syscall(1000)", 1000, {0}, 1},
#endif
    };
    for (size_t i = 0; i < sizeof p / sizeof p[0]; i++) {
        fflush(stdout);
        pid_t pid = fork();
        if (pid < 0) { perror("fork"); return 2; }
        if (pid == 0) {
            long r = call(&p[i]);
            _exit(r == -1 ? (errno & 0xff) : 0);
        }
        int st;
        if (waitpid(pid, &st, 0) < 0) { perror("waitpid"); return 2; }
        if (WIFSIGNALED(st)) {
            printf("%s SIG%d\n", p[i].name, WTERMSIG(st));
        } else if (WEXITSTATUS(st) == 0) {
            printf("%s OK\n", p[i].name);
        } else {
            const char *n = strerrorname_np(WEXITSTATUS(st));
            printf("%s %s\n", p[i].name, n ? n : "E?");
        }
    }
    return 0;
}
