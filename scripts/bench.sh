#!/usr/bin/env bash
# berth side by side with CNCF Distribution: berth, Distribution 3 (go install, pinned) and
# Distribution 2.8 (Debian's docker-registry), each with filesystem storage and what its users
# run for auth (berth: its admin user, bearer tokens; Distribution: htpasswd, Basic on every
# request), measured by berth-bench in interleaved rounds (A B C, A B C, …). Each server is
# started fresh for each of its runs (idle RSS is read from a new process) on the data it kept
# from the earlier rounds. Prints the medians of every metric and berth's advantage over each.
#
#   scripts/bench.sh [--rounds N] [--targets berth,distribution-3,distribution-2.8] [--smoke]
#                    [--out DIR] [--keep] [-- extra berth-bench run flags]
#
# --smoke runs every section with tiny sizes in seconds (CI). The full run writes about 3.5 GB
# per target and round (checked before it starts) and takes about 5 minutes per round on a
# 2-core machine. The registries' data is removed at the end unless --keep.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=3
TARGETS=berth,distribution-3,distribution-2.8
SMOKE=0
KEEP=0
OUT=""
EXTRA=()
DIST3_VERSION=v3.1.2 # github.com/distribution/distribution/v3
while [ $# -gt 0 ]; do
	case $1 in
	--rounds) ROUNDS=$2; shift 2 ;;
	--targets) TARGETS=$2; shift 2 ;;
	--smoke) SMOKE=1; shift ;;
	--out) OUT=$2; shift 2 ;;
	--keep) KEEP=1; shift ;;
	--) shift; EXTRA=("$@"); break ;;
	*) echo "bench.sh: unknown argument $1" >&2; exit 2 ;;
	esac
done
log() { echo "bench.sh: $*" >&2; }

WORK=${OUT:-$(mktemp -d /tmp/berth-bench.XXXXXX)}
mkdir -p "$WORK/bin"
RESULTS=$WORK/results.json
: >"$RESULTS"
TOOLS_DIR=${BERTH_TOOLS_DIR:-$HOME/.cache/berth-tools}
mkdir -p "$TOOLS_DIR/bin"

log "building berth and berth-bench into $WORK/bin"
go build -o "$WORK/bin/berth" ./cmd/berth
go build -o "$WORK/bin/berth-bench" ./cmd/berth-bench
go build -o "$WORK/bin/oidc-issuer" ./test/clients/oidc-issuer

need() { # install what the targets need
	local apt=()
	case ",$TARGETS," in *,distribution-*) command -v htpasswd >/dev/null || apt+=(apache2-utils) ;; esac
	case ",$TARGETS," in *,distribution-2.8,*) [ -x /usr/bin/docker-registry ] || apt+=(docker-registry) ;; esac
	if [ ${#apt[@]} -gt 0 ]; then
		log "apt-get install ${apt[*]}"
		DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${apt[@]}" >&2
	fi
	case ",$TARGETS," in *,distribution-3,*)
		local dir=$TOOLS_DIR/distribution-$DIST3_VERSION
		if [ ! -x "$dir/registry" ]; then
			log "go install github.com/distribution/distribution/v3/cmd/registry@$DIST3_VERSION"
			(cd /tmp && GOBIN=$dir GOFLAGS=-buildvcs=false go install "github.com/distribution/distribution/v3/cmd/registry@$DIST3_VERSION") >&2
		fi
		DIST3=$dir/registry ;;
	esac
}
DIST3=""
need

free_port() {
	local p
	for _ in $(seq 50); do
		p=$((20000 + RANDOM % 20000))
		(exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
	done
	return 1
}

USER_NAME=bench
PASSWORD=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
OWNER_PASSWORD=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
export BERTH_CONFIG_DIR=$WORK/berth-cli
declare -A PORT DATA
REFRESH_TOKEN=""
PID=""
# A test OpenID Connect issuer that berth trusts, for federated sign-ins in the token section.
"$WORK/bin/oidc-issuer" -listen 127.0.0.1:0 >"$WORK/issuer.log" 2>&1 &
ISSUER_PID=$!
ISSUER=""
for _ in $(seq 100); do
	ISSUER=$(sed -n 's/^issuer //p' "$WORK/issuer.log")
	[ -n "$ISSUER" ] && break
	sleep 0.05
done
[ -n "$ISSUER" ] || { log "the OIDC issuer did not start"; exit 1; }
FEDERATED_APP=""

start() { # target
	local t=$1 port=${PORT[$1]} data=${DATA[$1]}
	case $t in
	berth)
		BERTH_BOOTSTRAP_PASSWORD=$OWNER_PASSWORD BERTH_FEDERATION_ISSUERS=$ISSUER BERTH_FEDERATION_ALLOW_HTTP=true BERTH_OUTBOUND_ALLOWED_NETWORKS=127.0.0.1/32 \
			"$WORK/bin/berth" serve --listen "127.0.0.1:$port" --data-dir "$data" >>"$WORK/$t.log" 2>&1 &
		;;
	distribution-3) "$DIST3" serve "$WORK/$t.yml" >>"$WORK/$t.log" 2>&1 & ;;
	distribution-2.8) /usr/bin/docker-registry serve "$WORK/$t.yml" >>"$WORK/$t.log" 2>&1 & ;;
	esac
	PID=$!
	for _ in $(seq 200); do
		code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/v2/" || true)
		[ "$code" = 401 ] && return 0
		kill -0 "$PID" 2>/dev/null || break
		sleep 0.05
	done
	log "$t did not start:"; tail -20 "$WORK/$t.log" >&2; return 1
}

stop() {
	kill -TERM "$PID" 2>/dev/null || true
	wait "$PID" 2>/dev/null || true
	PID=""
}

# On any exit: stop the server of the run in progress, and remove the registries' data.
cleanup() {
	[ -n "$PID" ] && stop
	kill "$ISSUER_PID" 2>/dev/null || true
	if [ "$KEEP" != 1 ] && [ ${#DATA[@]} -gt 0 ]; then
		rm -rf "${DATA[@]}"
	fi
}
trap cleanup EXIT

json_field() { sed -n "s/.*\"$1\":\"\([^\"]*\)\".*/\1/p"; }

# One-time set-up per target: data folder, credentials.
IFS=, read -r -a TARGET_LIST <<<"$TARGETS"
for t in "${TARGET_LIST[@]}"; do
	PORT[$t]=$(free_port)
	DATA[$t]=$WORK/data-$t
	mkdir -p "${DATA[$t]}"
	case $t in
	berth)
		# The owner turns the admin user of the default registry on (its password is the one the
		# clients use) and gets a refresh token through the directory, as `berth login` does.
		start berth
		rm -rf "$BERTH_CONFIG_DIR"
		printf '%s' "$OWNER_PASSWORD" | "$WORK/bin/berth" auth login --server "http://127.0.0.1:${PORT[$t]}" -u owner --password-stdin >/dev/null
		PASSWORD_BERTH=$("$WORK/bin/berth" registry update -n default --admin-enabled true --query 'credentials.passwords[0].value' -o tsv)
		dir_token=$(curl -fsS -d grant_type=password -d username=owner --data-urlencode "password=$OWNER_PASSWORD" "http://127.0.0.1:${PORT[$t]}/mgmt/v1/token" | json_field access_token)
		REFRESH_TOKEN=$(curl -fsS -d grant_type=access_token --data-urlencode "access_token=$dir_token" -d "service=127.0.0.1:${PORT[$t]}" "http://127.0.0.1:${PORT[$t]}/oauth2/exchange" | json_field refresh_token)
		# A service principal that pulls with a federated credential (a Kubernetes service account's).
		FEDERATED_APP=$("$WORK/bin/berth" sp create -n bench-federated --query appId -o tsv)
		"$WORK/bin/berth" role assignment create --assignee "$FEDERATED_APP" --role AcrPull --scope /registries/default -o none
		"$WORK/bin/berth" sp federated-credential create --id "$FEDERATED_APP" -n bench --issuer "$ISSUER" --subject system:serviceaccount:bench:puller -o none
		[ -n "$PASSWORD_BERTH" ] && [ -n "$REFRESH_TOKEN" ] && [ -n "$FEDERATED_APP" ] || { log "berth set-up failed"; exit 1; }
		stop
		;;
	distribution-*)
		htpasswd -Bbc "$WORK/htpasswd" "$USER_NAME" "$PASSWORD" 2>/dev/null
		# Debian's configuration, with the data folder, port and htpasswd file of this run.
		cat >"$WORK/$t.yml" <<-EOF
			version: 0.1
			log:
			  fields:
			    service: registry
			storage:
			  cache:
			    blobdescriptor: inmemory
			  filesystem:
			    rootdirectory: ${DATA[$t]}
			  delete:
			    enabled: true
			http:
			  addr: 127.0.0.1:${PORT[$t]}
			  secret: $PASSWORD
			  headers:
			    X-Content-Type-Options: [nosniff]
			auth:
			  htpasswd:
			    realm: basic-realm
			    path: $WORK/htpasswd
		EOF
		;;
	*) log "unknown target $t (berth, distribution-3, distribution-2.8)"; exit 2 ;;
	esac
done

# Each full run writes ~3.5 GB (pushes are kept: the list section's repositories are created
# once); refuse to start what would fill the disk.
if [ "$SMOKE" != 1 ]; then
	need_mb=$((3584 * ROUNDS * ${#TARGET_LIST[@]}))
	free_mb=$(df -Pm "$WORK" | awk 'NR==2 {print $4}')
	if [ "$free_mb" -lt "$need_mb" ]; then
		log "needs about $need_mb MB free in $WORK, has $free_mb: fewer --rounds or --targets, or --out elsewhere"
		exit 1
	fi
fi

SIZES=()
if [ "$SMOKE" = 1 ]; then
	SIZES=(--images 2 --layers 2 --layer-size 1048576 --big-layers 1 --big-size 4194304 --peak-pushes 8
		--peak-size 1048576 --clients 1,8 --duration 300ms --repos 40 --tags 40 --page-size 10)
fi

export BENCH_PASSWORD BENCH_REFRESH=$REFRESH_TOKEN
for round in $(seq "$ROUNDS"); do
	for t in "${TARGET_LIST[@]}"; do
		log "round $round/$ROUNDS: $t"
		# Write back what the previous run left dirty, so that it does not slow this one down.
		sync
		start "$t"
		user=$USER_NAME BENCH_PASSWORD=$PASSWORD refresh=()
		if [ "$t" = berth ]; then
			user=default BENCH_PASSWORD=$PASSWORD_BERTH refresh=(--refresh-token-env BENCH_REFRESH --federated-user "$FEDERATED_APP" --federated-token-env BENCH_FEDERATED)
			# A fresh token each round: the issuer's live ten minutes.
			BENCH_FEDERATED=$(curl -fsS "$ISSUER/token?sub=system:serviceaccount:bench:puller&aud=api://BerthTokenExchange")
			export BENCH_FEDERATED
		fi
		sleep 1 # let the server settle before its idle RSS is read
		"$WORK/bin/berth-bench" run "http://127.0.0.1:${PORT[$t]}" -u "$user" --password-env BENCH_PASSWORD "${refresh[@]}" \
			--target "$t" --pid "$PID" --limit-dir "${DATA[$t]}" --json "$RESULTS" -q "${SIZES[@]}" "${EXTRA[@]}" \
			>"$WORK/$t-round$round.txt" || { stop; log "berth-bench failed against $t"; cat "$WORK/$t-round$round.txt" >&2; exit 1; }
		stop
	done
done

"$WORK/bin/berth-bench" compare --base "${TARGET_LIST[0]}" "$RESULTS" | tee "$WORK/table.md"
log "results: $RESULTS; table: $WORK/table.md"
