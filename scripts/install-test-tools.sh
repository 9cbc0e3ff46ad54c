#!/usr/bin/env bash
# Installs every outside tool berth's tests drive: real registry clients (Debian packages and
# pinned `go install`s) and the OCI distribution-spec conformance suite. Idempotent: tools already
# present at the pinned version are kept. Prints the directory to put on PATH as its last line.
set -euo pipefail

AXE_VERSION=4.14.1        # axe-core from npm: the portal's accessibility checks
CRANE_VERSION=v0.22.1     # github.com/google/go-containerregistry
ORAS_VERSION=v1.3.6       # oras.land/oras
REGCTL_VERSION=v0.11.7    # github.com/regclient/regclient
HELM_VERSION=v3.22.0      # helm.sh/helm/v3
DIST3_VERSION=v3.1.2 # github.com/distribution/distribution/v3
CONFORMANCE_VERSION=v0.0.0-20260831232431-97274622c111   # github.com/opencontainers/distribution-spec/conformance (untagged)
MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c          # github.com/minio/minio (the S3 server; builds in ~5 min, then cached)
PEBBLE_VERSION=v2.10.3    # github.com/letsencrypt/pebble/v2 (Let's Encrypt's ACME test server, and its DNS stand-in)

TOOLS_DIR=${BERTH_TOOLS_DIR:-$HOME/.cache/berth-tools}
BIN="$TOOLS_DIR/bin"
mkdir -p "$BIN"

log() { echo "install-test-tools: $*" >&2; }

# Debian packages: skopeo, umoci, podman, buildah (no container runtime is needed for push/pull);
# the docker CLI (logs in client-side without a daemon) from docker.io when it is not there yet.
need_apt=()
for p in skopeo umoci podman buildah curl; do
	command -v "$p" >/dev/null 2>&1 || need_apt+=("$p")
done
command -v docker >/dev/null 2>&1 || need_apt+=(docker.io)
# kubectl: the pull secrets' checks (Debian's kubernetes-client when no newer one is there)
command -v kubectl >/dev/null 2>&1 || need_apt+=(kubernetes-client)
# Chromium: the portal's browser tests (test/portal, driven with chromedp; no browser download)
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v npm >/dev/null 2>&1 || need_apt+=(npm)
if [ ${#need_apt[@]} -gt 0 ]; then
	if [ "$(id -u)" -ne 0 ]; then
		log "need root to apt-get install ${need_apt[*]}"; exit 1
	fi
	log "apt-get install ${need_apt[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >&2
	apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >&2
fi

# axe-core (npm), pinned: test/portal injects axe.min.js into each page (BERTH_AXE names it).
if [ "$(cat "$TOOLS_DIR/axe-core/.version" 2>/dev/null)" != "$AXE_VERSION" ]; then
	log "npm pack axe-core@$AXE_VERSION"
	rm -rf "$TOOLS_DIR/axe-core" && mkdir -p "$TOOLS_DIR/axe-core"
	(cd "$TOOLS_DIR/axe-core" && npm pack --silent "axe-core@$AXE_VERSION" >/dev/null && tar xzf "axe-core-$AXE_VERSION.tgz" &&
		cp package/axe.min.js package/LICENSE . && rm -rf package "axe-core-$AXE_VERSION.tgz")
	echo "$AXE_VERSION" >"$TOOLS_DIR/axe-core/.version"
fi
ln -sf "$TOOLS_DIR/axe-core/axe.min.js" "$BIN/axe.min.js"

# Go-installed clients, each pinned; a stamp file records the version installed.
goinstall() { # name module version
	local name=$1 mod=$2 ver=$3
	if [ -x "$BIN/$name" ] && [ "$(cat "$BIN/.$name.version" 2>/dev/null)" = "$ver" ]; then
		return 0
	fi
	log "go install $mod@$ver"
	GOBIN="$BIN" GOFLAGS=-buildvcs=false go install "$mod@$ver" >&2
	echo "$ver" >"$BIN/.$name.version"
}
goinstall crane github.com/google/go-containerregistry/cmd/crane "$CRANE_VERSION" &
goinstall oras oras.land/oras/cmd/oras "$ORAS_VERSION" &
goinstall regctl github.com/regclient/regclient/cmd/regctl "$REGCTL_VERSION" &
wait
goinstall pebble github.com/letsencrypt/pebble/v2/cmd/pebble "$PEBBLE_VERSION" &
goinstall pebble-challtestsrv github.com/letsencrypt/pebble/v2/cmd/pebble-challtestsrv "$PEBBLE_VERSION" &
wait
goinstall helm helm.sh/helm/v3/cmd/helm "$HELM_VERSION"
# Distribution 3, the source registry of test/e2e's import test (and a peer of the benchmarks)
goinstall registry github.com/distribution/distribution/v3/cmd/registry "$DIST3_VERSION"
goinstall minio github.com/minio/minio "$MINIO_VERSION"

# A real OpenID Connect provider for the single sign-on tests: zitadel/oidc's OP library (pinned in
# test/oidc-provider/go.mod, its own module) with a groups claim; rebuilt when its sources change.
op_src=$(cd "$(dirname "${BASH_SOURCE[0]}")/../test/oidc-provider" && pwd)
op_ver=$(cat "$op_src/go.mod" "$op_src/go.sum" "$op_src/main.go" | sha256sum | cut -c1-16)
if [ ! -x "$BIN/oidc-provider" ] || [ "$(cat "$BIN/.oidc-provider.version" 2>/dev/null)" != "$op_ver" ]; then
	log "building the test OpenID Connect provider (zitadel/oidc)"
	(cd "$op_src" && GOFLAGS=-buildvcs=false go build -o "$BIN/oidc-provider" . >&2)
	echo "$op_ver" >"$BIN/.oidc-provider.version"
fi

# The conformance suite is a test package in an untagged module: build it from the module cache.
if [ ! -x "$BIN/oci-conformance" ] || [ "$(cat "$BIN/.oci-conformance.version" 2>/dev/null)" != "$CONFORMANCE_VERSION" ]; then
	log "building the OCI conformance suite $CONFORMANCE_VERSION"
	dir=$(cd /tmp && GOFLAGS=-mod=mod go mod download -json "github.com/opencontainers/distribution-spec/conformance@$CONFORMANCE_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
	[ -n "$dir" ] || { log "could not download the conformance module"; exit 1; }
	work=$(mktemp -d)
	cp -r "$dir/." "$work/"
	chmod -R u+w "$work"
	(cd "$work" && go build -o "$BIN/oci-conformance" . >&2)
	rm -rf "$work"
	echo "$CONFORMANCE_VERSION" >"$BIN/.oci-conformance.version"
fi

echo "$BIN"
