#!/bin/bash
# make-debian-oci.sh DIR [TAG]: write an OCI image layout of a debootstrap'ed
# Debian minbase (bookworm) to DIR, tag TAG (default "latest"), without hod.
# The first run takes ~25-90 s and needs the Debian mirror; the layout is
# cached under $HOD_TEST_CACHE (default /var/tmp/hod-test-cache) and later
# runs copy it from there (delete the cache dir to rebuild).
#
# env: HOD_TEST_CACHE, DEBIAN_SUITE (bookworm), DEBIAN_MIRROR (debootstrap's
#      default), OCI_EPOCH (mtime of every file, default 0).
set -euo pipefail
here=$(dirname "$(readlink -f "$0")")
. "$here/lib-oci.sh"

[[ $# -ge 1 ]] || { sed -n '2,10p' "$0" >&2; exit 2; }
out=$1 tag=${2:-latest}
suite=${DEBIAN_SUITE:-bookworm}
cache=${HOD_TEST_CACHE:-/var/tmp/hod-test-cache}
cached=$cache/debian-$suite-oci
[[ $(id -u) = 0 ]] || { echo "make-debian-oci: debootstrap needs root" >&2; exit 1; }
mkdir -p "$cache"

if [[ ! -s $cached/index.json ]]; then
    command -v debootstrap >/dev/null || { echo "make-debian-oci: apt-get install debootstrap" >&2; exit 1; }
    work=$(mktemp -d "$cache/.debootstrap.XXXXXX")
    trap 'rm -rf "$work"' EXIT
    echo "make-debian-oci: debootstrap --variant=minbase $suite (cached in $cached afterwards)" >&2
    if ! debootstrap --variant=minbase "$suite" "$work/rootfs" ${DEBIAN_MIRROR:-} \
        > "$work/debootstrap.log" 2>&1; then
        tail -20 "$work/debootstrap.log" >&2
        echo "make-debian-oci: debootstrap failed" >&2
        exit 1
    fi
    # Smaller and host-independent: no package cache, no apt lists, empty
    # placeholders for the files a runtime bind-mounts.
    rm -rf "$work/rootfs"/var/cache/apt/archives/*.deb "$work/rootfs"/var/lib/apt/lists/* \
        "$work/rootfs"/var/log/* "$work/rootfs"/tmp/*
    : > "$work/rootfs/etc/hostname"; : > "$work/rootfs/etc/resolv.conf"
    printf '127.0.0.1\tlocalhost\n' > "$work/rootfs/etc/hosts"
    oci_layout_from_rootfs "$work/rootfs" "$work/layout" "latest" \
        '{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["bash"]}'
    rm -rf "$cached"
    mv "$work/layout" "$cached"
fi

rm -rf "$out"; mkdir -p "$out"
cp -a "$cached/." "$out/"
if [[ $tag != latest ]]; then
    jq --arg tag "$tag" '.manifests[0].annotations["org.opencontainers.image.ref.name"] = $tag' \
        "$out/index.json" > "$out/index.json.new" && mv "$out/index.json.new" "$out/index.json"
fi
echo "$out:$tag"
