#!/usr/bin/env bash
# Builds berth's container image from the Containerfile with buildah (no daemon), as CI does on a
# machine that cannot pull the Go builder image (nor run a RUN step): the static binary is built
# here into bin/image/ (the tree the image holds) and the Containerfile's `prebuilt` target copies
# it onto the same runtime stage as the default target. Where registries are reachable, a plain
# `buildah build -t berth .` builds the same image with the Containerfile's own builder stage.
#
#   scripts/image.sh [TAG]     (default localhost/berth:dev; prints the tag as its last line)
set -euo pipefail
cd "$(dirname "$0")/.."
TAG=${1:-localhost/berth:dev}
log() { echo "image.sh: $*" >&2; }
command -v buildah >/dev/null || {
	[ "$(id -u)" -eq 0 ] || { log "buildah is not installed and installing it needs root"; exit 1; }
	log "apt-get install buildah"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends buildah >&2
}
VERSION=$(git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT=$(git rev-parse HEAD 2>/dev/null || echo unknown)
OUT=bin/image
rm -rf "$OUT" && mkdir -p "$OUT/usr/local/bin" "$OUT/data" "$OUT/etc/ssl/certs"
log "go build (static) $VERSION"
CGO_ENABLED=0 go build -trimpath \
	-ldflags "-s -w -X github.com/berth-registry/berth/internal/cli.Version=$VERSION -X github.com/berth-registry/berth/internal/cli.Commit=$COMMIT" \
	-o "$OUT/usr/local/bin/berth" ./cmd/berth
cp /etc/ssl/certs/ca-certificates.crt "$OUT/etc/ssl/certs/"

log "buildah build -f Containerfile --target prebuilt"
buildah build --format docker --pull-never --target prebuilt --build-arg VERSION="$VERSION" \
	-f Containerfile -t "$TAG" . >&2
echo "$TAG"
