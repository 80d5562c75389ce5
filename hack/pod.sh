#!/bin/bash
# Run a command the way it would run as root inside a Kubernetes pod, without a cluster
# (tests/it/pods.rs, docs/tutorials/kubernetes.md). Needs root; changes nothing on the host
# (every namespace, limit and filter goes away with the command).
#
#   hack/pod.sh userns  CMD…   a pod with user namespaces (`hostUsers: false`) whose root is
#                              the only mapped ID (unshare --user --map-root-user --mount)
#                              (POD_DEFAULT_CAPS=1: with only a pod's default capabilities
#                              in the namespace, as without `capabilities.add: [SYS_ADMIN]`)
#   hack/pod.sh userns-range CMD…
#                              the same with 65536 IDs, 0 -> $POD_ID_BASE, else the first
#                              /etc/subuid range (of $POD_SUBID_USER, else the first line;
#                              100000 without one), as the kubelet maps a pod; the caller
#                              makes the store the pod uses owned by that ID, as a pod's
#                              volume would be
#   hack/pod.sh nouserns CMD…  a pod without user namespaces: host root with a pod's default
#                              capabilities as its bounding set, no inheritable or ambient
#                              ones (no CAP_SYS_ADMIN; $POD_RUNTIME, see below) and the
#                              RuntimeDefault seccomp rules for namespaces: clone and
#                              unshare with CLONE_NEWUSER fail with EPERM, clone3 with ENOSYS
#                              (so the C library falls back to clone)
set -euo pipefail

# The pod's default capabilities: containerd's (pkg/oci defaults), or with POD_RUNTIME=crio
# CRI-O's (internal/config/capabilities: no NET_RAW, SYS_CHROOT, MKNOD, AUDIT_WRITE or
# SETFCAP); POD_CAPS_ADD=sys_chroot,mknod adds some, as `capabilities.add` does.
case ${POD_RUNTIME:-containerd} in
containerd) caps=chown,dac_override,fsetid,fowner,mknod,net_raw,setgid,setuid,setfcap,setpcap,net_bind_service,sys_chroot,kill,audit_write ;;
crio) caps=chown,dac_override,fsetid,fowner,setgid,setuid,setpcap,net_bind_service,kill ;;
*) echo "$0: POD_RUNTIME is containerd or crio" >&2; exit 2 ;;
esac
[ -n "${POD_CAPS_ADD:-}" ] && caps=$caps,$POD_CAPS_ADD
POD_CAPS=$(echo "$caps" | sed 's/[^,]*/+&/g')

usage() {
    echo "usage: $0 userns|userns-range|nouserns CMD [ARG…]" >&2
    exit 2
}
[ $# -ge 2 ] || usage
mode=$1
shift
[ "$(id -u)" = 0 ] || {
    echo "$0: needs root" >&2
    exit 2
}

subid_range() {
    local line
    if [ -n "${POD_SUBID_USER:-}" ]; then
        line=$(grep -m1 "^${POD_SUBID_USER}:" "$1" || true)
    else
        line=$(grep -m1 -v '^#' "$1" 2>/dev/null || true)
    fi
    if [ -n "$line" ]; then
        echo "$line" | cut -d: -f2
    else
        echo 100000
    fi
}

# POD_DEFAULT_CAPS=1: in the user namespace pods too, only the default capabilities (a pod
# with `hostUsers: false` and no `capabilities.add`: no CAP_SYS_ADMIN even in its namespace).
cmd=("$@")
if [ -n "${POD_DEFAULT_CAPS:-}" ]; then
    cmd=(setpriv --bounding-set "-all,$POD_CAPS" --inh-caps -all --ambient-caps -all -- "$@")
fi

case $mode in
userns)
    exec unshare --user --map-root-user --mount --propagation private -- "${cmd[@]}"
    ;;
userns-range)
    uid0=${POD_ID_BASE:-$(subid_range /etc/subuid)}
    gid0=${POD_ID_BASE:-$(subid_range /etc/subgid)}
    # Not `unshare --map-users`: it writes the maps with newuidmap, which allows root only
    # the ranges /etc/subuid gives root.
    # The child unshares, then waits on a fifo until its maps are written (by root,
    # directly, as the kubelet's runtime does from the host side) and becomes the
    # namespace's root, all in one process: an exec in between would drop its capabilities.
    dir=$(mktemp -d)
    trap 'rm -rf "$dir"' EXIT
    mkfifo "$dir/go"
    perl -e '
        use strict; use POSIX ();
        my %a = (x86_64 => [272, 165], aarch64 => [97, 40]);
        chomp(my $m = `uname -m`);
        my ($unshare, $mount) = @{$a{$m} or die "pod.sh: no syscall numbers for $m\n"};
        syscall($unshare, 0x10000000 | 0x00020000) == 0
            or die "pod.sh: unshare: $!\n";
        open(my $go, "<", shift @ARGV) or die "pod.sh: $!\n";
        <$go>;
        close $go;
        # MS_REC | MS_PRIVATE, as unshare --propagation private.
        my ($none, $root) = ("none", "/");
        syscall($mount, $none, $root, 0, 0x4000 | 0x40000, 0) == 0
            or die "pod.sh: making / private: $!\n";
        POSIX::setgid(0) or die "pod.sh: setgid: $!\n";
        $) = "0 0";
        POSIX::setuid(0) or die "pod.sh: setuid: $!\n";
        exec @ARGV or die "pod.sh: $ARGV[0]: $!\n";
    ' "$dir/go" "${cmd[@]}" &
    pid=$!
    own=$(readlink /proc/self/ns/user)
    for _ in $(seq 1 500); do
        ns=$(readlink "/proc/$pid/ns/user" 2>/dev/null || echo gone)
        [ "$ns" != "$own" ] && break
        sleep 0.01
    done
    echo "0 $uid0 65536" >"/proc/$pid/uid_map"
    echo "0 $gid0 65536" >"/proc/$pid/gid_map"
    echo go >"$dir/go"
    rc=0
    wait "$pid" || rc=$?
    exit "$rc"
    ;;
nouserns)
    # The filter (struct sock_filter {u16 code; u8 jt, jf; u32 k}) is installed by perl, as
    # root with CAP_SYS_ADMIN (so without no_new_privs), then setpriv drops the capabilities
    # and executes the command; both are inherited by everything it starts.
    exec perl -e '
        use strict;
        my %a = (x86_64 => [0xC000003E, 157, 272, 56, 435],
                 aarch64 => [0xC00000B7, 167, 97, 220, 435]);
        chomp(my $m = `uname -m`);
        my $t = $a{$m} or die "pod.sh: no seccomp numbers for $m\n";
        my ($arch, $prctl, $unshare, $clone, $clone3) = @$t;
        my $ALLOW = 0x7fff0000; my $EPERM = 0x00050000 | 1; my $ENOSYS = 0x00050000 | 38;
        my @p = (
            [0x20, 0, 0, 4],            # 0 ld arch
            [0x15, 0, 8, $arch],        # 1 other arch -> 10 allow
            [0x20, 0, 0, 0],            # 2 ld nr
            [0x15, 9, 0, $clone3],      # 3 clone3 -> 13 ENOSYS
            [0x15, 2, 0, $unshare],     # 4 unshare -> 7
            [0x15, 1, 0, $clone],       # 5 clone -> 7
            [0x06, 0, 0, $ALLOW],       # 6
            [0x20, 0, 0, 16],           # 7 ld args[0] (low half)
            [0x45, 3, 0, 0x10000000],   # 8 CLONE_NEWUSER -> 12 EPERM
            [0x06, 0, 0, $ALLOW],       # 9
            [0x06, 0, 0, $ALLOW],       # 10
            [0x06, 0, 0, $ALLOW],       # 11
            [0x06, 0, 0, $EPERM],       # 12
            [0x06, 0, 0, $ENOSYS],      # 13
        );
        my $f = join "", map { pack "SCCL", @$_ } @p;
        my $prog = pack "S x6 P", scalar(@p), $f;
        syscall($prctl, 22, 2, $prog, 0, 0) == 0
            or die "pod.sh: installing the seccomp filter: $!\n";
        exec @ARGV or die "pod.sh: $ARGV[0]: $!\n";
    ' setpriv --bounding-set "-all,$POD_CAPS" --inh-caps "-all" --ambient-caps "-all" -- "$@"
    ;;
*)
    usage
    ;;
esac
