#!/usr/bin/env bash
# berth's whole test run, as CI runs it: installs the outside tools the tests drive, checks
# formatting and vet, runs the Go tests (unit, API over real sockets, crash and memory e2e), runs
# each fuzz target briefly, then starts a real `berth serve` and runs the OCI conformance suite
# and the real clients against it, and prints the push/pull benchmark, runs each microbenchmark
# once and a seconds-long smoke of berth-bench (scripts/bench.sh --smoke).
# It also runs the mutation tester on a fixed sample (scripts/mutate.sh): the nine mutations of
# issue 14 must be killed, and no unlisted mutant may survive.
# Environment: FUZZTIME (default 150000 executions per target, 5 to 15 s each here), SKIP_CLIENTS=1
# and SKIP_BENCH=1 to skip those stages: a run that skipped any stage says so and exits 1, as it
# proves less than a whole run (.ci/run never skips).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
WORK=$ROOT/.work
mkdir -p "$WORK"
# The portal's browser tests keep a screenshot of every page here (CI artifacts).
export BERTH_ARTIFACTS=$WORK/artifacts

passed=0 failed=0 skipped=0 failures=() skips=()
stage() { # name, command...
	local name=$1; shift
	echo "=== $name"
	local start=$SECONDS
	if "$@"; then
		passed=$((passed + 1)); echo "=== $name: ok ($((SECONDS - start))s)"
	else
		failed=$((failed + 1)); failures+=("$name"); echo "=== $name: FAILED ($((SECONDS - start))s)"
	fi
}

skip() { # name, why
	skipped=$((skipped + 1)); skips+=("$1 ($2)"); echo "=== $1: SKIPPED ($2)"
}

tools() {
	local bin
	bin=$(bash scripts/install-test-tools.sh | tail -n 1) || return 1
	export PATH="$bin:$PATH"
}
stage "install test tools" tools

fmt_vet() {
	local unformatted
	unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
	[ -z "$unformatted" ] || { echo "gofmt would change: $unformatted"; return 1; }
	go vet ./...
}
stage "gofmt and go vet" fmt_vet

# A throw-away PostgreSQL (Debian's, installed when missing) for the store suite's second dialect
# and for the whole server suite over PostgreSQL.
PG_DIR=$(mktemp -u /tmp/berth-postgres.XXXXXX) # outside the clone: the postgres user must reach it
postgres_up() {
	local dsn
	dsn=$(bash scripts/postgres.sh start "$PG_DIR" | tail -n 1) && [ -n "$dsn" ] || return 1
	export BERTH_TEST_POSTGRES=$dsn BERTH_REQUIRE_POSTGRES=1
	echo "PostgreSQL at ${dsn%%\?*}"
}
stage "start PostgreSQL" postgres_up

# A throw-away MinIO (built by install-test-tools.sh) for the S3 blob driver.
S3_DIR=$WORK/minio
minio_up() {
	local url
	url=$(bash scripts/minio.sh start "$S3_DIR" | tail -n 1) && [ -n "$url" ] || return 1
	source "$S3_DIR/env"
	export BERTH_TEST_S3=$url BERTH_REQUIRE_S3=1
	echo "MinIO at ${url%%\?*}"
}
stage "start MinIO" minio_up
trap 'bash scripts/postgres.sh stop "$PG_DIR" >/dev/null 2>&1; rm -rf "$PG_DIR"; bash scripts/minio.sh stop "$S3_DIR"' EXIT

stage "go test (race detector on; store suite on SQLite and PostgreSQL, blob suite on the filesystem and S3)" \
	env BERTH_REQUIRE_CLIENTS=1 go test -race -count=1 ./...
stage "go test of the server packages over PostgreSQL and S3 (MinIO)" \
	env BERTH_TEST_BACKEND=postgres BERTH_TEST_STORAGE=s3 go test -count=1 ./internal/... ./test/e2e

# Every fuzz target of the tree, found in the sources: one that is renamed or added is fuzzed
# under its new name, and one that did not actually fuzz (no "fuzz: elapsed" line, or
# "no fuzz tests to fuzz") fails the stage.
FUZZ_TARGETS=(
	internal/oci:FuzzParseDigest internal/oci:FuzzParseReference internal/oci:FuzzValidateName
	internal/oci:FuzzParseManifest internal/oci:FuzzParsePlatform internal/distribution:FuzzParseV2Path internal/policy:FuzzParseCondition
	internal/policy:FuzzLike internal/policy:FuzzParseScopes client:FuzzParseChallenge
)
fuzz() {
	# A count, not a duration: go1.26's fuzz coordinator can report a bare "context deadline
	# exceeded" when a -fuzztime duration ends mid-run (golang/go#75804), a failure with no input.
	local t=${FUZZTIME:-150000x} ok=0 found listed
	found=$(grep -rE --include='*_test.go' '^func Fuzz[A-Za-z0-9_]*\(' client cmd internal test 2>/dev/null |
		sed -E 's|^(.*)/[^/]*_test\.go:func (Fuzz[A-Za-z0-9_]*)\(.*|\1:\2|' | sort)
	listed=$(printf '%s\n' "${FUZZ_TARGETS[@]}" | sort)
	if [ "$found" != "$listed" ]; then
		echo "the fuzz targets in the sources and FUZZ_TARGETS in scripts/test.sh differ:"
		diff <(echo "$listed") <(echo "$found") | sed 's/^</  listed only:/; s/^>/  in the sources only:/' | grep only
		ok=1
	fi
	for target in "${FUZZ_TARGETS[@]}"; do
		local pkg=${target%%:*} name=${target##*:} out rc
		echo "--- fuzz $name ($t)"
		out=$(go test -run '^$' -fuzz "^$name\$" -fuzztime "$t" "./$pkg" 2>&1); rc=$?
		echo "$out" | tail -n 3
		if [ $rc -ne 0 ]; then
			echo "--- fuzz $name: FAILED (exit $rc)"; echo "$out" | tail -n 30; ok=1
		elif ! grep -q '^fuzz: elapsed: .*execs: [1-9]' <<<"$out" || grep -q 'no fuzz tests to fuzz' <<<"$out"; then
			echo "--- fuzz $name: did not fuzz"; ok=1
		fi
	done
	return $ok
}
stage "fuzz targets" fuzz

stage "mutation testing: the nine hand mutants of issue 14 and a fixed sample (scripts/mutate.sh --sample 48)" \
	bash scripts/mutate.sh --sample 48

# A real berth serve for the conformance suite and the clients, with a fresh owner password.
SERVER_PID=""
OWNER_PASSWORD=$(head -c 24 /dev/urandom | base64 | tr -d '/+=')
export BERTH_CONFIG_DIR=$WORK/berth-cli
serve() {
	go build -o "$WORK/berth" ./cmd/berth || return 1
	rm -rf "$WORK/serve-data"
	BERTH_BOOTSTRAP_PASSWORD=$OWNER_PASSWORD "$WORK/berth" serve --listen 127.0.0.1:0 --data-dir "$WORK/serve-data" --log-level info >"$WORK/serve.log" 2>&1 &
	SERVER_PID=$!
	for _ in $(seq 100); do
		ADDR=$(sed -n 's/.*"msg":"berth is serving","addr":"\([^"]*\)".*/\1/p' "$WORK/serve.log" | head -n 1)
		[ -n "$ADDR" ] && curl -fsS "http://$ADDR/readyz" >/dev/null 2>&1 && { echo "berth serving on $ADDR"; return 0; }
		sleep 0.1
	done
	cat "$WORK/serve.log"; return 1
}
stage "start berth serve" serve

# The owner signs in with the CLI and turns the default registry's admin user on; the suite and
# the clients use its first password.
admin() {
	rm -rf "$BERTH_CONFIG_DIR"
	printf '%s' "$OWNER_PASSWORD" | "$WORK/berth" auth login --server "http://$ADDR" -u owner --password-stdin >/dev/null &&
	ADMIN_PASSWORD=$("$WORK/berth" registry update -n default --admin-enabled true --query 'credentials.passwords[0].value' -o tsv 2>/dev/null) &&
	[ -n "$ADMIN_PASSWORD" ]
}

if [ -n "$SERVER_PID" ] && [ -n "${ADDR:-}" ]; then
	stage "owner signs in, admin user enabled (berth CLI)" admin
	stage "OCI conformance (1.1 and dev as the admin user; fails without credentials)" \
		env OCI_USERNAME=default OCI_PASSWORD="${ADMIN_PASSWORD:-}" bash scripts/conformance.sh "$ADDR" "$WORK/conformance"
	client_stages=("real clients (docker login as the admin user)"
		"identity scenario with real clients (admin, token, scope maps, berth login, sp)"
		"authorization scenario with real clients (AcrPull, rbac-abac, conditions, anonymous pull, network rules; own server)"
		"troubleshooting table with real clients (client text, login event, check-health code, explain for 15 causes; own server)"
		"ACR runbook with real clients (credential show | docker login, token → docker login, --expose-token, login -n <login server>, az's flags and outputs; own server)"
		"content with real clients (crane, skopeo, oras push; berth repository/manifest list, show, untag, delete; locks refuse crane; purge; soft delete and restore; own server)"
		"federated sign-in with real clients (a test OIDC issuer; GitHub-shaped token: docker login + crane, berth auth login --federated-token; dev refused; Kubernetes token pulls with skopeo; own server)")
	if [ "${SKIP_CLIENTS:-}" != 1 ]; then
		stage "${client_stages[0]}" \
			env BERTH_USER=default BERTH_PASSWORD="${ADMIN_PASSWORD:-}" bash test/clients/run.sh "$ADDR"
		stage "${client_stages[1]}" \
			env BERTH="$WORK/berth" BERTH_OWNER_PASSWORD="$OWNER_PASSWORD" bash test/clients/auth.sh "$ADDR" "$WORK/serve.log"
		stage "${client_stages[2]}" \
			env BERTH="$WORK/berth" bash test/clients/access.sh
		stage "${client_stages[3]}" \
			env BERTH="$WORK/berth" TABLE="$WORK/troubleshooting-table.md" bash test/clients/troubleshoot.sh
		stage "${client_stages[4]}" \
			env BERTH="$WORK/berth" bash test/clients/runbook.sh
		stage "${client_stages[5]}" \
			env BERTH="$WORK/berth" bash test/clients/content.sh
		stage "${client_stages[6]}" \
			env BERTH="$WORK/berth" bash test/clients/federation.sh
	else
		for name in "${client_stages[@]}"; do skip "$name" "SKIP_CLIENTS=1"; done
	fi
	stop() {
		kill -TERM "$SERVER_PID" && wait "$SERVER_PID"
		local rc=$?
		[ "$rc" -eq 0 ] || { echo "berth exited with $rc after SIGTERM"; tail -20 "$WORK/serve.log"; return 1; }
		grep -q '"level":"ERROR"' "$WORK/serve.log" && { echo "berth logged errors:"; grep '"level":"ERROR"' "$WORK/serve.log" | head; return 1; }
		return 0
	}
	stage "graceful shutdown, no server errors logged" stop
else
	skip "owner sign-in, OCI conformance, real clients, graceful shutdown" "berth serve did not start"
fi

# README.md as a new user runs it: every shell block, in order, in a copy of the checkout with a
# home of its own, against the fresh server its first block starts on :5000 (test/readme).
if [ "${SKIP_CLIENTS:-}" != 1 ]; then
	stage "README walkthrough: every shell block, as written, in order, on a fresh server (test/readme)" \
		env BERTH_README_TEST=1 go test -count=1 -run TestREADME -v ./test/readme
else
	skip "README walkthrough" "SKIP_CLIENTS=1"
fi

# The container image: built from the Containerfile with buildah (scripts/image.sh), pushed into
# a berth and pulled back, and run (test/image).
stage "container image: built with buildah, pushed into berth, run (test/image)" \
	env BERTH_IMAGE_TEST=1 go test -count=1 -run TestImage -v ./test/image

stage "soak: a minute of mixed load (pushes, pulls, HEADs, tokens, anonymous, a slow client, management changes): no failed request, RSS flat (scripts/soak.sh --minutes 1)" \
	bash scripts/soak.sh --minutes 1

bench_stages=("push/pull benchmark"
	"microbenchmarks, once each (Decide, token sign/verify, catalog page, usage of 100 000 manifests, metadata writes of 64 clients on SQLite and PostgreSQL, manifest parse, blob write)"
	"benchmark smoke: berth-bench against a fresh berth, every section, tiny sizes (scripts/bench.sh --smoke)"
	"benchmark smoke of the scale-out path: berth over PostgreSQL and MinIO, one and three replicas behind a proxy, every section and the S3 limit (scripts/bench.sh --backend s3 --smoke)"
	"portal: every blade rendered server-side over 10 000 repositories and 100 000 events of each kind (BenchmarkPages)"
	"costs as data grows, smoke: berth-bench scale at 1× and 10× on SQLite and PostgreSQL, charts in the artifacts")
if [ "${SKIP_BENCH:-}" != 1 ]; then
	stage "${bench_stages[0]}" go test -run '^$' -bench BenchmarkPushPull -benchtime 2x ./test/e2e
	stage "${bench_stages[1]}" \
		go test -run '^$' -bench . -benchtime 1x ./internal/policy ./internal/token ./internal/store ./internal/oci ./internal/blob/fsblob
	stage "${bench_stages[2]}" \
		bash scripts/bench.sh --smoke --rounds 1 --targets berth --out "$WORK/bench"
	stage "${bench_stages[3]}" \
		bash scripts/bench.sh --backend s3 --smoke --rounds 1 --targets berth-s3,berth-s3x3 --out "$WORK/bench-s3"
	stage "${bench_stages[4]}" go test -run '^$' -bench BenchmarkPages -benchtime 10x ./internal/portal
	stage "${bench_stages[5]}" \
		go run ./cmd/berth-bench scale --database sqlite --database "$BERTH_TEST_POSTGRES" --scales 1,10 --reps 20 -q \
		--plot-dir "$BERTH_ARTIFACTS/scale"
else
	for name in "${bench_stages[@]}"; do skip "$name" "SKIP_BENCH=1"; done
fi

echo
if [ -d "$BERTH_ARTIFACTS/portal" ]; then
	echo "portal screenshots: $BERTH_ARTIFACTS/portal ($(ls "$BERTH_ARTIFACTS/portal" | wc -l) pages)"
fi
if [ "$failed" -gt 0 ]; then
	printf 'failed stage: %s\n' "${failures[@]}"
fi
if [ "$skipped" -gt 0 ]; then
	printf 'skipped stage: %s\n' "${skips[@]}"
fi
if [ "$skipped" -gt 0 ]; then
	echo "test.sh: $passed passed, $failed failed, $skipped skipped: INCOMPLETE, not a success (run without SKIP_* for a whole run)"
	exit 1
fi
echo "test.sh: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
