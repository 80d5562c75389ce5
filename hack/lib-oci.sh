# shellcheck shell=bash
# lib-oci.sh: build an OCI image layout from a root filesystem directory with
# plain tools (GNU tar, gzip, sha256sum, jq), so that test fixtures never
# depend on hod (or on buildah) being correct.
#
#   oci_layout_from_rootfs ROOTFS LAYOUT_DIR TAG CONFIG_JSON_FRAGMENT
#
# CONFIG_JSON_FRAGMENT is the image config's "config" object (Env, Cmd, ...).
# The layer is one gzip'ed tar of ROOTFS with sorted names, numeric owners and
# every mtime set to $OCI_EPOCH (default 0), so the same input gives the same
# digests.

OCI_EPOCH=${OCI_EPOCH:-0}

oci_arch() {
    case $(uname -m) in
        x86_64) echo amd64 ;;
        aarch64) echo arm64 ;;
        armv7l) echo arm ;;
        ppc64le) echo ppc64le ;;
        s390x) echo s390x ;;
        *) uname -m ;;
    esac
}

# _oci_put_blob LAYOUT FILE -> prints the sha256 hex, moves FILE into blobs/
_oci_put_blob() {
    local layout=$1 file=$2 hex
    hex=$(sha256sum "$file" | cut -d' ' -f1)
    mv -f "$file" "$layout/blobs/sha256/$hex"
    echo "$hex"
}

oci_layout_from_rootfs() {
    local rootfs=$1 layout=$2 tag=$3 cfg=$4
    local tmp created arch
    mkdir -p "$layout/blobs/sha256"
    tmp=$(mktemp -d "${layout%/}/.tmp.XXXXXX")
    created=$(date -u -d "@$OCI_EPOCH" +%Y-%m-%dT%H:%M:%SZ)
    arch=$(oci_arch)

    # Layer: deterministic tar (ustar/gnu headers carry no atime/ctime).
    tar --create --file "$tmp/layer.tar" --directory "$rootfs" \
        --sort=name --numeric-owner --mtime="@$OCI_EPOCH" \
        --format=gnu \
        --anchored --exclude=./dev/'*' .
    local diff_id
    diff_id=$(sha256sum "$tmp/layer.tar" | cut -d' ' -f1)
    gzip -n -6 "$tmp/layer.tar"
    local layer_size layer_hex
    layer_size=$(stat -c %s "$tmp/layer.tar.gz")
    layer_hex=$(_oci_put_blob "$layout" "$tmp/layer.tar.gz")

    # Config.
    jq -n --arg created "$created" --arg arch "$arch" --arg diff "sha256:$diff_id" \
        --argjson cfg "$cfg" '{
            created: $created, architecture: $arch, os: "linux",
            config: $cfg,
            rootfs: {type: "layers", diff_ids: [$diff]},
            history: [{created: $created, created_by: "hack/lib-oci.sh: tar of a root filesystem"}]
        }' > "$tmp/config.json"
    local cfg_size cfg_hex
    cfg_size=$(stat -c %s "$tmp/config.json")
    cfg_hex=$(_oci_put_blob "$layout" "$tmp/config.json")

    # Manifest.
    jq -n --arg cfg "sha256:$cfg_hex" --argjson cfgsize "$cfg_size" \
        --arg layer "sha256:$layer_hex" --argjson layersize "$layer_size" '{
            schemaVersion: 2,
            mediaType: "application/vnd.oci.image.manifest.v1+json",
            config: {mediaType: "application/vnd.oci.image.config.v1+json", digest: $cfg, size: $cfgsize},
            layers: [{mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: $layer, size: $layersize}]
        }' > "$tmp/manifest.json"
    local man_size man_hex
    man_size=$(stat -c %s "$tmp/manifest.json")
    man_hex=$(_oci_put_blob "$layout" "$tmp/manifest.json")

    # Index (replace an entry with the same tag) and the layout marker.
    local index='{"schemaVersion":2,"manifests":[]}'
    [[ -s $layout/index.json ]] && index=$(cat "$layout/index.json")
    jq --arg tag "$tag" --arg man "sha256:$man_hex" --argjson size "$man_size" --arg arch "$arch" '
        .manifests = ([.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] != $tag)]
          + [{mediaType: "application/vnd.oci.image.manifest.v1+json", digest: $man, size: $size,
              platform: {architecture: $arch, os: "linux"},
              annotations: {"org.opencontainers.image.ref.name": $tag}}])' \
        <<<"$index" > "$tmp/index.json"
    printf '{"imageLayoutVersion":"1.0.0"}' > "$layout/oci-layout"
    mv -f "$tmp/index.json" "$layout/index.json"
    rm -rf "$tmp"
}
