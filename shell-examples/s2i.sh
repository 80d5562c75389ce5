#!/usr/bin/env bash
# s2i.sh: an OpenShift source-to-image (S2I) style build with the primitives, no
# Containerfile and no mount (so it runs the same as root and as a rootless user):
#
#  1. a builder image, busybox from scratch, carrying /usr/libexec/s2i/assemble and
#     /usr/libexec/s2i/run (shell-examples/s2i/) and a user 1001 whose home is
#     /opt/app-root/src, labelled the way S2I builder images are;
#  2. the application's sources (shell-examples/s2i/src/) copied to /tmp/src owned by 1001;
#  3. `hod run --user 1001 $ctr /usr/libexec/s2i/assemble`, which installs and "builds" them;
#  4. `hod config --user 1001 --cmd /usr/libexec/s2i/run`, commit, push.
#
#   shell-examples/s2i.sh
#   podman run --rm localhost/s2i-app      # hello from s2i, uid=1001 / built by uid 1001
#
# env: HOD (default: hod, or target/{release,debug}/hod of this checkout),
#      HOD_ROOT / HOD_RUNROOT / HOD_STORAGE_DRIVER (default: hod's defaults),
#      BUILDER (default localhost/s2i-busybox-builder:latest),
#      IMAGE (default localhost/s2i-app:latest),
#      OCI_DIR (default ${TMPDIR:-/tmp}/s2i-app-oci; the image is pushed there),
#      BUSYBOX (default /bin/busybox, static)
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

BUILDER=${BUILDER:-localhost/s2i-busybox-builder:latest}
IMAGE=${IMAGE:-localhost/s2i-app:latest}
OCI_DIR=${OCI_DIR:-${TMPDIR:-/tmp}/s2i-app-oci}
BUSYBOX=${BUSYBOX:-/bin/busybox}
s2i=$here/shell-examples/s2i
[[ -x $BUSYBOX ]] || { echo "need a static busybox at $BUSYBOX (apt-get install busybox-static)" >&2; exit 1; }

ctrs=()
cleanup() { for c in "${ctrs[@]}"; do hod rm "$c" >/dev/null 2>&1 || true; done; }
trap cleanup EXIT

set -x
# 1. The builder image. Its filesystem is made by the container's own busybox (a RUN as
#    root), so no step needs `hod mount` and the owners are the image's, not the caller's.
ctr=$(hod from scratch)
ctrs+=("$ctr")
hod copy --chmod 0755 "$ctr" "$BUSYBOX" /bin/busybox
hod run "$ctr" /bin/busybox sh -c '
    set -e
    /bin/busybox mkdir -p /usr/bin /sbin /usr/sbin /etc /root /tmp /proc /sys /dev /usr/libexec/s2i
    /bin/busybox --install -s
    chmod 1777 /tmp
    echo "root:x:0:0:root:/root:/bin/sh" > /etc/passwd
    echo "default:x:1001:0:Default Application User:/opt/app-root/src:/sbin/nologin" >> /etc/passwd
    echo "root:x:0:" > /etc/group
    mkdir -p /opt/app-root/src
    chown -R 1001:0 /opt/app-root
    chmod -R g=u /opt/app-root'
hod copy --chmod 0755 "$ctr" "$s2i/assemble" "$s2i/run" /usr/libexec/s2i/
hod config \
    --env PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin \
    --env HOME=/opt/app-root/src \
    --workingdir /opt/app-root/src \
    --label io.openshift.s2i.scripts-url=image:///usr/libexec/s2i \
    --label io.s2i.scripts-url=image:///usr/libexec/s2i \
    --label io.k8s.description="busybox S2I builder (hod example)" \
    --user 1001 \
    --cmd /usr/libexec/s2i/usage \
    "$ctr"
hod commit -q "$ctr" "$BUILDER"

# 2.-4. The application image, as `s2i build` makes it.
app=$(hod from "$BUILDER")
ctrs+=("$app")
hod copy --chown 1001:0 "$app" "$s2i/src/." /tmp/src
hod run --user 1001 "$app" /usr/libexec/s2i/assemble
hod config --user 1001 --cmd /usr/libexec/s2i/run "$app"
hod commit -q "$app" "$IMAGE"
rm -rf "$OCI_DIR"
hod push "$IMAGE" "oci:$OCI_DIR:latest"
set +x

echo "built $IMAGE from $BUILDER; OCI layout in $OCI_DIR"
echo "try: podman ${opts[*]} run --rm $IMAGE"
