#!/bin/bash
# make-busybox-oci.sh DIR [TAG]: write an OCI image layout of busybox to DIR
# (tag TAG, default "latest") without hod or buildah: Debian's static
# /bin/busybox, one relative symlink per applet in /bin, a minimal /etc
# (passwd, group, hosts placeholders) and fixed mtimes, so the image ID is the
# same on every run.  Seed a store with it the way podman/skopeo users do:
#
#   skopeo copy oci:DIR:latest 'containers-storage:[vfs@ROOT+RUNROOT]busybox'
#
# env: BUSYBOX (default /bin/busybox, must be static), OCI_EPOCH (mtime, 0).
set -euo pipefail
here=$(dirname "$(readlink -f "$0")")
. "$here/lib-oci.sh"

[[ $# -ge 1 ]] || { sed -n '2,11p' "$0" >&2; exit 2; }
out=$1 tag=${2:-latest}
BUSYBOX=${BUSYBOX:-/bin/busybox}
[[ -x $BUSYBOX ]] || { echo "make-busybox-oci: $BUSYBOX not found (apt-get install busybox-static)" >&2; exit 1; }
if ! file -L "$BUSYBOX" 2>/dev/null | grep -q 'statically linked'; then
    command -v file >/dev/null && { echo "make-busybox-oci: $BUSYBOX is not statically linked" >&2; exit 1; }
fi

stage=$(mktemp -d "${TMPDIR:-/tmp}/busybox-rootfs.XXXXXX")
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage"/{bin,etc,root,tmp,home,var,usr/bin,usr/sbin,sbin,proc,sys,dev}
chmod 0700 "$stage/root"; chmod 1777 "$stage/tmp"
install -m 0755 "$BUSYBOX" "$stage/bin/busybox"
# busybox --install -s DIR makes absolute links to its own path; we want the
# links relative inside the image, so list the applets and link them here.
for applet in $("$BUSYBOX" --list); do
    [[ $applet == busybox ]] && continue
    ln -s busybox "$stage/bin/$applet"
done
cat > "$stage/etc/passwd" <<'PW'
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
bin:x:2:2:bin:/bin:/bin/false
mail:x:8:8:mail:/var/mail:/bin/false
nobody:x:65534:65534:nobody:/home:/bin/false
PW
cat > "$stage/etc/group" <<'GR'
root:x:0:
daemon:x:1:
bin:x:2:
wheel:x:10:root
mail:x:12:daemon
nogroup:x:65533:
nobody:x:65534:
GR
: > "$stage/etc/hosts"; : > "$stage/etc/resolv.conf"; : > "$stage/etc/hostname"
chmod 0644 "$stage"/etc/*
# Normalise permissions against the caller's umask.
find "$stage" -type d ! -path "$stage/tmp" ! -path "$stage/root" -exec chmod 0755 {} +
chown -R 0:0 "$stage" 2>/dev/null || true

# Start from an empty layout so the result is reproducible.
rm -rf "$out"; mkdir -p "$out"
oci_layout_from_rootfs "$stage" "$out" "$tag" \
    '{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["sh"]}'
echo "$out:$tag"
