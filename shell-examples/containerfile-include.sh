#!/usr/bin/env bash
# containerfile-include.sh: `hod bud` of a Containerfile.in that pulls in its install
# steps with `#include "./Containerfile.install"` (buildah's Dockerfile.in pattern), on a
# busybox base made locally first. Offline; run as root.
#
#   cargo build --release && shell-examples/containerfile-include.sh
#
# It installs busybox-static with apt-get when /bin/busybox is missing. cpp is optional:
# without it hod's built-in preprocessor gives the same image (NO_CPP=1 forces that).
#
# env: HOD (default: hod, or target/{release,debug}/hod of this checkout),
#      HOD_ROOT / HOD_RUNROOT / HOD_STORAGE_DRIVER (default: hod's defaults),
#      IMAGE (default localhost/hello-include:latest), BUSYBOX (default /bin/busybox, static)
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
if [[ -z ${HOD:-} ]]; then
    for c in "$here/target/release/hod" "$here/target/debug/hod"; do
        [[ -x $c ]] && { HOD=$c; break; }
    done
    HOD=${HOD:-hod}
fi
HOD=$(command -v "$HOD")
opts=()
[[ -n ${HOD_ROOT:-} ]] && opts+=(--root "$HOD_ROOT")
[[ -n ${HOD_RUNROOT:-} ]] && opts+=(--runroot "$HOD_RUNROOT")
[[ -n ${HOD_STORAGE_DRIVER:-} ]] && opts+=(--storage-driver "$HOD_STORAGE_DRIVER")
hod() { "$HOD" "${opts[@]}" "$@"; }

IMAGE=${IMAGE:-localhost/hello-include:latest}
BASE=localhost/busybox-base:latest
BUSYBOX=${BUSYBOX:-/bin/busybox}
ctxdir=$(dirname "$(readlink -f "$0")")/containerfile-include

# What the example needs, installed when missing.
if [[ ! -x $BUSYBOX ]]; then
    if [[ $(id -u) = 0 ]] && command -v apt-get >/dev/null; then
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 &&
            DEBIAN_FRONTEND=noninteractive apt-get install -y -q busybox-static >&2
    fi
    [[ -x $BUSYBOX ]] || { echo "need a static busybox at $BUSYBOX (apt-get install busybox-static)" >&2; exit 1; }
fi

set -x
# The local base: busybox and its applets in an image made from scratch.
if ! hod inspect -t image "$BASE" >/dev/null 2>&1; then
    ctr=$(hod from scratch)
    trap 'hod rm "$ctr" >/dev/null 2>&1 || true' EXIT
    mnt=$(hod mount "$ctr")
    mkdir -p "$mnt"/{bin,etc,root,tmp,proc,sys,dev,usr/local/bin}
    chmod 1777 "$mnt/tmp"
    cp "$BUSYBOX" "$mnt/bin/busybox"
    for applet in $("$BUSYBOX" --list); do
        [[ $applet == busybox ]] || ln -sf busybox "$mnt/bin/$applet"
    done
    echo 'root:x:0:0:root:/root:/bin/sh' > "$mnt/etc/passwd"
    echo 'root:x:0:' > "$mnt/etc/group"
    hod umount "$ctr"
    hod config --env PATH=/usr/local/bin:/bin --cmd '["sh"]' "$ctr"
    hod commit -q "$ctr" "$BASE" >/dev/null
    hod rm "$ctr" >/dev/null
    trap - EXIT
fi

# The build: Containerfile.in → (cpp or built-in #include) → image.
if [[ -n ${NO_CPP:-} ]]; then
    # A PATH without cpp: hod's built-in preprocessor.
    PATH=/nonexistent hod bud -f "$ctxdir/Containerfile.in" -t "$IMAGE" "$ctxdir"
else
    hod bud -f "$ctxdir/Containerfile.in" -t "$IMAGE" "$ctxdir"
fi
check=$(hod from "$IMAGE")
hod run "$check" /usr/local/bin/hello
hod rm "$check" >/dev/null
set +x

echo "built $IMAGE from $ctxdir/Containerfile.in"
