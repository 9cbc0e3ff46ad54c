#!/usr/bin/env bash
# Drives real registry clients against a running berth at $1 (host:port): each pushes and pulls
# and checks bytes or digests. Prints one line per step and "N passed, M failed" at the end.
# Credentials: BERTH_USER and BERTH_PASSWORD (e.g. the admin user); the docker CLI logs in with
# them and every client reads what it stored.
# Needs: skopeo umoci podman buildah (Debian) and crane oras regctl helm (go install) on PATH;
# scripts/install-test-tools.sh installs them.
set -uo pipefail
REG=${1:?usage: run.sh HOST:PORT}
: "${BERTH_USER:?set BERTH_USER and BERTH_PASSWORD}" "${BERTH_PASSWORD:?set BERTH_PASSWORD}"
WORK=$(mktemp -d)
trap 'chmod -R u+w "$WORK" 2>/dev/null; rm -rf "$WORK"' EXIT
cd "$WORK"
export HOME=$WORK/home DOCKER_CONFIG=$WORK/docker HELM_CONFIG_HOME=$WORK/helm/config HELM_CACHE_HOME=$WORK/helm/cache HELM_DATA_HOME=$WORK/helm/data
mkdir -p "$HOME" "$DOCKER_CONFIG"
# One credential store for all: docker's config.json, written by the docker CLI itself.
export REGISTRY_AUTH_FILE=$DOCKER_CONFIG/config.json HELM_REGISTRY_CONFIG=$DOCKER_CONFIG/config.json
printf '%s' "$BERTH_PASSWORD" | docker login "$REG" -u "$BERTH_USER" --password-stdin >/dev/null 2>&1 ||
	{ echo "docker login $REG as $BERTH_USER failed"; exit 1; }
S="--root $WORK/containers/storage --runroot $WORK/containers/run --storage-driver vfs"

pass=0 fail=0
# has GREP_ARGS…: grep that reads all of its input (grep -q exits at the first match, and under
# pipefail the writer's SIGPIPE would then fail the step)
has() { grep "$@" >/dev/null; }
step() { # name, then a command; the command's output is shown only on failure
	local name=$1; shift
	if out=$("$@" 2>&1); then
		echo "ok   $name"; pass=$((pass + 1))
	else
		echo "FAIL $name"; echo "$out" | tail -20 | sed 's/^/     /'; fail=$((fail + 1))
	fi
}
same() { cmp -s "$1" "$2" || { echo "$1 and $2 differ"; return 1; }; }

# --- umoci + skopeo -------------------------------------------------------------------------
umoci_skopeo() {
	umoci init --layout umoci-layout && umoci new --image umoci-layout:base &&
	umoci unpack --rootless --image umoci-layout:base bundle && echo "hello from umoci" >bundle/rootfs/hello.txt &&
	umoci repack --image umoci-layout:base bundle &&
	skopeo copy --dest-tls-verify=false oci:umoci-layout:base "docker://$REG/clients/skopeo:v1" &&
	skopeo copy --src-tls-verify=false "docker://$REG/clients/skopeo:v1" oci:skopeo-pulled:v1 || return 1
	# Each inspect must succeed and print a manifest: two failures would compare equal.
	local a b
	a=$(skopeo inspect --raw oci:umoci-layout:base) || { echo "skopeo inspect of the layout failed"; return 1; }
	b=$(skopeo inspect --raw --tls-verify=false "docker://$REG/clients/skopeo:v1") || { echo "skopeo inspect of the pushed image failed"; return 1; }
	grep -q '"schemaVersion"' <<<"$a" || { echo "not a manifest: $a"; return 1; }
	[ "$(sha256sum <<<"$a")" = "$(sha256sum <<<"$b")" ] || { echo "pushed manifest differs: $b, want $a"; return 1; }
	skopeo list-tags --tls-verify=false "docker://$REG/clients/skopeo" | has '"v1"'
}
step "umoci layout -> skopeo copy push/pull, same manifest" umoci_skopeo

skopeo_docker() {
	skopeo copy --format v2s2 --dest-tls-verify=false oci:umoci-layout:base "docker://$REG/clients/skopeo:v2s2" &&
	skopeo inspect --raw --tls-verify=false "docker://$REG/clients/skopeo:v2s2" | has 'application/vnd.docker.distribution.manifest.v2+json'
}
step "skopeo push as Docker schema 2" skopeo_docker

# --- crane ----------------------------------------------------------------------------------
crane_flow() {
	head -c 1048576 /dev/urandom >rand.bin && tar -cf layer.tar rand.bin &&
	crane append --insecure --oci-empty-base -f layer.tar -t "$REG/clients/crane:v1" &&
	crane export --insecure "$REG/clients/crane:v1" - | tar -xOf - rand.bin >rand.out && same rand.bin rand.out &&
	crane pull --insecure "$REG/clients/crane:v1" pulled.tar &&
	crane push --insecure pulled.tar "$REG/clients/crane:v2" &&   # a Docker schema 2 manifest
	crane manifest --insecure "$REG/clients/crane:v2" | has 'application/vnd.docker.distribution.manifest.v2+json' &&
	crane copy --insecure "$REG/clients/crane:v1" "$REG/clients/crane-copy:v1" &&
	[ "$(crane digest --insecure "$REG/clients/crane:v1")" = "$(crane digest --insecure "$REG/clients/crane-copy:v1")" ] &&
	crane ls --insecure "$REG/clients/crane" | has -x v2 &&
	crane catalog --insecure "$REG" | has -x clients/crane &&
	crane tag --insecure "$REG/clients/crane:v1" v3 && crane delete --insecure "$REG/clients/crane@$(crane digest --insecure "$REG/clients/crane:v2")" &&
	# The deleted tag is gone (MANIFEST_UNKNOWN), not just unreachable for any other reason.
	local out
	if out=$(crane manifest --insecure "$REG/clients/crane:v2" 2>&1); then echo "crane:v2 still served after its delete"; return 1; fi
	grep -q 'MANIFEST_UNKNOWN' <<<"$out" || { echo "crane manifest of the deleted tag: $out"; return 1; }
}
step "crane append/export/pull/push/copy/tag/delete" crane_flow

# --- oras -----------------------------------------------------------------------------------
oras_flow() {
	echo "hello oras" >hello.txt && head -c 300000 /dev/urandom >data.bin && echo "signature" >sig.txt &&
	oras push --plain-http "$REG/clients/oras:v1" --artifact-type application/vnd.example.test.v1 hello.txt:text/plain data.bin:application/octet-stream &&
	mkdir -p out && oras pull --plain-http "$REG/clients/oras:v1" -o out && same hello.txt out/hello.txt && same data.bin out/data.bin &&
	oras attach --plain-http --artifact-type application/vnd.example.sig "$REG/clients/oras:v1" sig.txt:text/plain &&
	oras discover --plain-http --format json "$REG/clients/oras:v1" >discover.json &&
	grep -q 'application/vnd.example.sig' discover.json &&
	# discover must have used the referrers API: the tag list (which must list v1) has no
	# sha256-<digest> fallback tag
	local tags
	tags=$(oras repo tags --plain-http "$REG/clients/oras") || { echo "oras repo tags failed"; return 1; }
	grep -qx v1 <<<"$tags" || { echo "oras repo tags: $tags"; return 1; }
	if grep -q '^sha256-' <<<"$tags"; then echo "fallback tag: $tags"; return 1; fi
}
step "oras push/pull/attach/discover (referrers API, no tag fallback)" oras_flow

# --- regctl ---------------------------------------------------------------------------------
regctl_flow() {
	regctl registry set --tls disabled "$REG" &&
	regctl image copy ocidir://umoci-layout:base "$REG/clients/regctl:from-ocidir" &&
	regctl image copy "$REG/clients/crane:v1" "$REG/clients/regctl:v1" &&
	[ "$(regctl image digest "$REG/clients/crane:v1")" = "$(regctl image digest "$REG/clients/regctl:v1")" ] &&
	regctl image copy --referrers "$REG/clients/oras:v1" "$REG/clients/regctl-oras:v1" &&
	regctl artifact tree "$REG/clients/regctl-oras:v1" | has 'application/vnd.example.sig' &&
	regctl image copy "$REG/clients/regctl:v1" ocidir://regctl-out:v1 &&
	regctl tag ls "$REG/clients/regctl" | has -x from-ocidir
}
step "regctl copy (ocidir, images, referrers), tag ls, artifact tree" regctl_flow

# --- helm -----------------------------------------------------------------------------------
helm_flow() {
	helm create mychart >/dev/null && helm package mychart >/dev/null &&
	helm push mychart-0.1.0.tgz "oci://$REG/charts" --plain-http &&
	mkdir -p pulled && helm pull "oci://$REG/charts/mychart" --version 0.1.0 --plain-http -d pulled &&
	same mychart-0.1.0.tgz pulled/mychart-0.1.0.tgz &&
	helm show chart "oci://$REG/charts/mychart" --version 0.1.0 --plain-http | has '^name: mychart'
}
step "helm push/pull oci://, same chart" helm_flow

# --- podman / buildah -----------------------------------------------------------------------
buildah_flow() {
	echo "from buildah" >bfile.txt &&
	c=$(buildah $S from scratch) && buildah $S copy "$c" bfile.txt /bfile.txt &&
	buildah $S commit --format oci "$c" rig-buildah:v1 &&
	buildah $S push --tls-verify=false rig-buildah:v1 "docker://$REG/clients/buildah:v1" &&
	buildah $S rmi -a -f >/dev/null &&
	buildah $S pull --tls-verify=false "$REG/clients/buildah:v1" &&
	c2=$(buildah $S from "$REG/clients/buildah:v1") && m=$(buildah $S mount "$c2") && same bfile.txt "$m/bfile.txt"
}
step "buildah commit/push/pull, file intact" buildah_flow

podman_flow() {
	podman $S pull --tls-verify=false "$REG/clients/skopeo:v1" &&
	podman $S tag "$REG/clients/skopeo:v1" "$REG/clients/podman:v1" &&
	podman $S push --tls-verify=false "$REG/clients/podman:v1" &&
	podman $S manifest create rig-list &&
	podman $S manifest add rig-list "containers-storage:$REG/clients/podman:v1" &&
	podman $S manifest push --tls-verify=false --all rig-list "docker://$REG/clients/podman-list:v1" &&
	skopeo inspect --raw --tls-verify=false "docker://$REG/clients/podman-list:v1" | has '"manifests"' &&
	podman $S rmi -a -f >/dev/null && podman $S pull --tls-verify=false "$REG/clients/podman:v1"
}
step "podman pull/tag/push, manifest list push" podman_flow

echo "clients: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
