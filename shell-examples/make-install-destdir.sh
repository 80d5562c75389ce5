#!/usr/bin/env bash
# make-install-destdir.sh: build a tiny C program on the host and install it
# into a working container with `make install DESTDIR=$mnt`, the way
# distribution packaging does, then commit and run it.
#
# env: as scratch-busybox.sh (HOD, HOD_ROOT, HOD_RUNROOT, HOD_STORAGE_DRIVER),
#      IMAGE (default localhost/hello-destdir:latest), BUSYBOX (default /bin/busybox).
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

IMAGE=${IMAGE:-localhost/hello-destdir:latest}
BUSYBOX=${BUSYBOX:-/bin/busybox}
project=$(dirname "$(readlink -f "$0")")/make-install-project
build=$(mktemp -d)
trap 'rm -rf "$build"; [[ -n ${ctr:-} ]] && hod rm "$ctr" >/dev/null 2>&1 || true' EXIT

# Build on the host, out of tree; static so the image needs no libc.
make -s -C "$project" O="$build" all

set -x
ctr=$(hod from scratch)
mnt=$(hod mount "$ctr")
make -s -C "$project" O="$build" install DESTDIR="$mnt" PREFIX=/usr
# a shell for `run`, so the result can be checked inside the container
mkdir -p "$mnt/bin" && cp "$BUSYBOX" "$mnt/bin/busybox" && ln -s busybox "$mnt/bin/sh"
hod umount "$ctr"
hod config --entrypoint '["/usr/bin/hello"]' --env GREETING=destdir --label k=v "$ctr"
hod commit "$ctr" "$IMAGE"
hod rm "$ctr"
ctr=
set +x

# Check what got installed, through a fresh working container.
check=$(hod from "$IMAGE")
cmnt=$(hod mount "$check")
test -x "$cmnt/usr/bin/hello"
test -f "$cmnt/usr/share/doc/hello/README"
out=$(GREETING=destdir "$cmnt/usr/bin/hello")
hod umount "$check"
hod rm "$check" >/dev/null
[[ $out == "hello, destdir" ]] || { echo "unexpected output: $out" >&2; exit 1; }
echo "built $IMAGE with make install DESTDIR; /usr/bin/hello says: $out"
