#!/usr/bin/env bash
# scratch-busybox.sh: build a busybox image from scratch with nothing but the
# CLI (no Containerfile, no daemon, no network), then push it to an OCI layout.
#
#   sudo shell-examples/scratch-busybox.sh
#
# env: HOD (default: hod, or target/{release,debug}/hod of this checkout),
#      HOD_ROOT / HOD_RUNROOT / HOD_STORAGE_DRIVER (default: hod's defaults),
#      IMAGE (default localhost/busybox-scratch:latest),
#      OCI_DIR (default /tmp/busybox-scratch-oci), BUSYBOX (default /bin/busybox, static)
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
if [[ -z ${HOD:-} ]]; then
    for c in "$here/target/release/hod" "$here/target/debug/hod"; do
        [[ -x $c ]] && { HOD=$c; break; }
    done
    HOD=${HOD:-hod}
fi
opts=()
[[ -n ${HOD_ROOT:-} ]] && opts+=(--root "$HOD_ROOT")
[[ -n ${HOD_RUNROOT:-} ]] && opts+=(--runroot "$HOD_RUNROOT")
[[ -n ${HOD_STORAGE_DRIVER:-} ]] && opts+=(--storage-driver "$HOD_STORAGE_DRIVER")
hod() { "$HOD" "${opts[@]}" "$@"; }

IMAGE=${IMAGE:-localhost/busybox-scratch:latest}
OCI_DIR=${OCI_DIR:-/tmp/busybox-scratch-oci}
BUSYBOX=${BUSYBOX:-/bin/busybox}
[[ -x $BUSYBOX ]] || { echo "need a static busybox at $BUSYBOX (apt-get install busybox-static)" >&2; exit 1; }

set -x
ctr=$(hod from scratch)
trap 'hod rm "$ctr" >/dev/null 2>&1 || true' EXIT
mnt=$(hod mount "$ctr")

# The filesystem: busybox, one symlink per applet, a minimal /etc.
mkdir -p "$mnt"/{bin,etc,root,tmp,proc,sys,dev}
chmod 1777 "$mnt/tmp"
cp "$BUSYBOX" "$mnt/bin/busybox"
for applet in $("$BUSYBOX" --list); do
    [[ $applet == busybox ]] || ln -sf busybox "$mnt/bin/$applet"
done
echo 'root:x:0:0:root:/root:/bin/sh' > "$mnt/etc/passwd"
echo 'root:x:0:' > "$mnt/etc/group"

hod umount "$ctr"
hod config \
    --entrypoint '["/bin/busybox"]' \
    --cmd '["sh"]' \
    --env PATH=/bin \
    --env foo=bar \
    --label org.opencontainers.image.title=busybox-scratch \
    --label k=v \
    "$ctr"
hod commit "$ctr" "$IMAGE"
rm -rf "$OCI_DIR"
hod push "$IMAGE" "oci:$OCI_DIR:latest"
set +x

echo "built $IMAGE; OCI layout in $OCI_DIR"
echo "try: podman ${opts[*]} run --rm --net none $IMAGE /bin/busybox echo ok"
