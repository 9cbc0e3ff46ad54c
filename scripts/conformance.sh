#!/usr/bin/env bash
# Runs the OCI distribution-spec conformance suite against a berth at $1 (host:port), once with
# OCI_VERSION=1.1 and every optional API on, once with OCI_VERSION=dev. Passes only with zero
# failures, zero errors and no test skipped or disabled. Results go to $2 (default ./.work/conformance).
# Credentials: OCI_USERNAME and OCI_PASSWORD from the environment. With credentials set, a third run
# without them must fail to push: the registry is not open.
set -euo pipefail
REG=${1:?usage: conformance.sh HOST:PORT [RESULTS_DIR]}
OUT=${2:-./.work/conformance}
BIN=$(command -v oci-conformance) || { echo "oci-conformance not on PATH: run scripts/install-test-tools.sh" >&2; exit 1; }
mkdir -p "$OUT"
status=0
run() { # version dir [credentials…]
	local version=$1 dir=$2; shift 2
	rm -rf "$dir" && mkdir -p "$dir"
	(cd "$dir" && env -i PATH=/usr/bin:/bin HOME="$PWD" "$@" \
		OCI_REGISTRY="$REG" OCI_TLS=disabled OCI_VERSION="$version" \
		OCI_REPO1="conformance/$version/repo1" OCI_REPO2="conformance/$version/repo2" \
		OCI_API_PULL=true OCI_API_PUSH=true OCI_API_TAGS_LIST=true OCI_API_REFERRER=true \
		OCI_API_TAGS_DELETE=true OCI_API_MANIFESTS_DELETE=true OCI_API_BLOBS_DELETE=true \
		OCI_API_BLOBS_UPLOAD_CANCEL=true OCI_API_BLOBS_DIGEST_HEADER=true \
		OCI_API_MANIFESTS_DIGEST_HEADER=true OCI_API_MANIFESTS_TAG_PARAM=true \
		OCI_RESULTS_DIR=./results OCI_LOG=warn "$BIN" >output.txt 2>&1)
}
creds=()
if [ -n "${OCI_USERNAME:-}" ]; then
	creds=(OCI_USERNAME="$OCI_USERNAME" OCI_PASSWORD="${OCI_PASSWORD:-}")
	set +e
	run 1.1 "$OUT/anonymous"
	rc=$?
	set -e
	fails=$(grep -m1 '<testsuite ' "$OUT/anonymous/results/junit.xml" 2>/dev/null | sed -n 's/.* failures="\([0-9]*\)".*/\1/p')
	echo "conformance without credentials: exit $rc, failures ${fails:-?} (must fail)"
	if [ "$rc" -eq 0 ] || [ "${fails:-0}" -eq 0 ] || ! grep -q 'UNAUTHORIZED' "$OUT/anonymous/output.txt"; then
		echo "the suite passed without credentials: the registry is open" >&2
		status=1
	fi
fi
for version in 1.1 dev; do
	dir="$OUT/$version"
	set +e
	run "$version" "$dir" "${creds[@]}"
	rc=$?
	set -e
	junit="$dir/results/junit.xml"
	suite=$(grep -m1 '<testsuite ' "$junit" 2>/dev/null || true)
	attr() { echo "$suite" | sed -n "s/.* $1=\"\([0-9]*\)\".*/\1/p"; }
	tests=$(attr tests); failures=$(attr failures); errors=$(attr errors)
	disabled=$(attr disabled); skipped=$(attr skipped)
	passed=$(grep -c 'status="passed"' "$junit" 2>/dev/null || true)
	other=$(grep -o 'status="[a-z]*"' "$junit" 2>/dev/null | grep -vc 'status="passed"' || true)
	echo "conformance $version: exit $rc, tests ${tests:-?}, leaves passed ${passed:-0}, not passed ${other:-?}, failures ${failures:-?}, errors ${errors:-?}, disabled ${disabled:-0}, skipped ${skipped:-0}"
	if [ "$rc" -ne 0 ] || [ -z "$suite" ] || [ "${failures:-1}" != 0 ] || [ "${errors:-1}" != 0 ] ||
		[ "${disabled:-0}" != 0 ] || [ "${skipped:-0}" != 0 ] || [ "${other:-1}" != 0 ] || [ "${passed:-0}" -lt 500 ]; then
		echo "conformance $version FAILED; the failing tests:" >&2
		grep -E 'FAIL|Skip|Disabled|Error' "$dir/output.txt" | head -40 >&2 || true
		status=1
	fi
done
exit $status
