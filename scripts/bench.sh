#!/usr/bin/env bash
# berth side by side with CNCF Distribution: berth, Distribution 3 (go install, pinned) and
# Distribution 2.8 (Debian's docker-registry), each with filesystem storage and what its users
# run for auth (berth: its admin user, bearer tokens; Distribution: htpasswd, Basic on every
# request), measured by berth-bench in interleaved rounds (A B C, A B C, …). Each server is
# started fresh for each of its runs (idle RSS is read from a new process) on the data it kept
# from the earlier rounds. Prints the medians of every metric and berth's advantage over each.
#
#   scripts/bench.sh [--backend fs|s3] [--rounds N] [--targets T,…] [--smoke]
#                    [--out DIR] [--keep] [-- extra berth-bench run flags]
#
# --backend fs (the default) compares berth, distribution-3 and distribution-2.8 on the
# filesystem. --backend s3 compares the scale-out path: berth-s3 (one replica) and berth-s3x3
# (three) over PostgreSQL and MinIO, each behind a round-robin proxy (berth-bench proxy), beside
# distribution-3-s3 (Distribution 3 with its S3 driver, redirects off) on the same MinIO; the
# limit section adds plain uploads to the bucket with minio-go (the S3 limit). PostgreSQL and
# MinIO are started here (scripts/postgres.sh, scripts/minio.sh) and stopped at the end.
#
# --smoke runs every section with tiny sizes in seconds (CI). The full run writes about 3.5 GB
# per target and round (checked before it starts) and takes about 5 minutes per round on a
# 2-core machine. The registries' data is removed at the end unless --keep.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=3
BACKEND=fs
TARGETS=""
SMOKE=0
KEEP=0
OUT=""
EXTRA=()
DIST3_VERSION=v3.1.2 # github.com/distribution/distribution/v3
while [ $# -gt 0 ]; do
	case $1 in
	--rounds) ROUNDS=$2; shift 2 ;;
	--targets) TARGETS=$2; shift 2 ;;
	--backend) BACKEND=$2; shift 2 ;;
	--smoke) SMOKE=1; shift ;;
	--out) OUT=$2; shift 2 ;;
	--keep) KEEP=1; shift ;;
	--) shift; EXTRA=("$@"); break ;;
	*) echo "bench.sh: unknown argument $1" >&2; exit 2 ;;
	esac
done
log() { echo "bench.sh: $*" >&2; }
case $BACKEND in
fs) TARGETS=${TARGETS:-berth,distribution-3,distribution-2.8} ;;
s3) TARGETS=${TARGETS:-berth-s3,berth-s3x3,distribution-3-s3} ;;
*) log "--backend is fs or s3, not $BACKEND"; exit 2 ;;
esac

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
	case ",$TARGETS," in *,distribution-3,* | *,distribution-3-s3,*)
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
export PATH=$TOOLS_DIR/bin:$PATH

# The scale-out path's services: one PostgreSQL (a database per berth target) and one MinIO (a
# prefix per target, and the S3 limit's objects).
PG_DSN="" S3_URL="" PG_DIR=$WORK/postgres MINIO_DIR=$WORK/minio
case ",$TARGETS," in *-s3,* | *-s3x3,*)
	command -v minio >/dev/null || { log "installing the test tools (MinIO)"; bash scripts/install-test-tools.sh >&2; }
	PG_DSN=$(bash scripts/postgres.sh start "$PG_DIR" | tail -n 1)
	S3_URL=$(bash scripts/minio.sh start "$MINIO_DIR" | tail -n 1)
	# shellcheck disable=SC1091
	source "$MINIO_DIR/env"
	export AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
	;;
esac
# s3_url PREFIX: the storage URL of the bucket with a key prefix.
s3_url() { echo "${S3_URL%%\?*}/$1?${S3_URL#*\?}"; }
# pg_dsn NAME: the DSN of database NAME, created (empty) if missing.
pg_dsn() {
	local db=${1//-/_} port
	port=$(sed -n 's#.*@127.0.0.1:\([0-9]*\)/.*#\1#p' <<<"$PG_DSN")
	"$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)/createdb" -h 127.0.0.1 -p "$port" -U berth "$db" 2>/dev/null || true
	echo "${PG_DSN/\/postgres\?//$db?}"
}

free_port() {
	local p
	for _ in $(seq 50); do
		p=$((20000 + RANDOM % 12000)) # below the ephemeral ports (32768 on), which clients take
		(exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
	done
	return 1
}

USER_NAME=bench
PASSWORD=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
OWNER_PASSWORD=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
KEK=$(head -c 32 /dev/urandom | base64)
export BERTH_CONFIG_DIR=$WORK/berth-cli
declare -A PORT DATA DSN STORAGE BPASS BREFRESH BFED
PID="" PIDS=()
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

# wait_up PORT PID NAME: wait until the registry on PORT challenges (401), while PID lives.
wait_up() {
	local code
	for _ in $(seq 200); do
		code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$1/v2/" || true)
		[ "$code" = 401 ] && return 0
		kill -0 "$2" 2>/dev/null || break
		sleep 0.05
	done
	log "$3 did not start:"; tail -20 "$WORK/$3.log" >&2; return 1
}

# berth_replica TARGET N PORT: start replica N of a berth target on PORT.
berth_replica() {
	local t=$1 n=$2 port=$3 db=() log=$WORK/$1.log
	[ -n "${DSN[$t]:-}" ] && db=(--database "${DSN[$t]}" --storage "${STORAGE[$t]}")
	# Replicas over PostgreSQL seal their signing keys with a key they share.
	export BERTH_AUTH_KEY_ENCRYPTION_KEY=$KEK
	mkdir -p "${DATA[$t]}/replica$n"
	BERTH_BOOTSTRAP_PASSWORD=$OWNER_PASSWORD BERTH_FEDERATION_ISSUERS=$ISSUER BERTH_FEDERATION_ALLOW_HTTP=true BERTH_OUTBOUND_ALLOWED_NETWORKS=127.0.0.1/32 \
		"$WORK/bin/berth" serve --listen "127.0.0.1:$port" --data-dir "${DATA[$t]}/replica$n" "${db[@]}" >>"$log" 2>&1 &
	PIDS+=($!)
	wait_up "$port" "$!" "$t"
}

start() { # target: its server(s) on PORT[target]; PID is the one to measure ("" for several)
	local t=$1 port=${PORT[$1]} n backends=()
	PIDS=()
	case $t in
	berth)
		berth_replica "$t" 1 "$port"
		PID=${PIDS[0]}
		return
		;;
	berth-s3 | berth-s3x3)
		# The first replica alone (it may bootstrap the owner), then the others, then the proxy.
		local replicas=1
		[ "$t" = berth-s3x3 ] && replicas=3
		for n in $(seq "$replicas"); do
			local p
			p=$(free_port)
			berth_replica "$t" "$n" "$p"
			backends+=("http://127.0.0.1:$p")
		done
		PID=""
		[ "$replicas" = 1 ] && PID=${PIDS[0]}
		"$WORK/bin/berth-bench" proxy --listen "127.0.0.1:$port" "${backends[@]}" >>"$WORK/$t.log" 2>&1 &
		PIDS+=($!)
		wait_up "$port" "$!" "$t"
		return
		;;
	distribution-3 | distribution-3-s3) "$DIST3" serve "$WORK/$t.yml" >>"$WORK/$t.log" 2>&1 & ;;
	distribution-2.8) /usr/bin/docker-registry serve "$WORK/$t.yml" >>"$WORK/$t.log" 2>&1 & ;;
	esac
	PID=$!
	PIDS=("$PID")
	wait_up "$port" "$PID" "$t"
}

stop() {
	local p
	for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	PID="" PIDS=()
}

# On any exit: stop the server of the run in progress and the services, and remove the
# registries' data.
cleanup() {
	[ ${#PIDS[@]} -gt 0 ] && stop
	kill "$ISSUER_PID" 2>/dev/null || true
	[ -n "$PG_DSN" ] && bash scripts/postgres.sh stop "$PG_DIR" >/dev/null 2>&1
	[ -n "$S3_URL" ] && bash scripts/minio.sh stop "$MINIO_DIR" >/dev/null 2>&1
	if [ "$KEEP" != 1 ]; then
		[ ${#DATA[@]} -gt 0 ] && rm -rf "${DATA[@]}"
		rm -rf "$PG_DIR" "$MINIO_DIR"
	fi
	return 0
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
	berth | berth-s3 | berth-s3x3)
		if [ "$t" != berth ]; then
			DSN[$t]=$(pg_dsn "bench_$t")
			STORAGE[$t]=$(s3_url "$t")
			"$WORK/bin/berth" migrate --database "${DSN[$t]}" >>"$WORK/$t.log" 2>&1
		fi
		# The owner turns the admin user of the default registry on (its password is the one the
		# clients use) and gets a refresh token through the directory, as `berth login` does.
		start "$t"
		url=http://127.0.0.1:${PORT[$t]}
		rm -rf "$BERTH_CONFIG_DIR"
		printf '%s' "$OWNER_PASSWORD" | "$WORK/bin/berth" auth login --server "$url" -u owner --password-stdin >/dev/null
		BPASS[$t]=$("$WORK/bin/berth" registry update -n default --admin-enabled true --query 'credentials.passwords[0].value' -o tsv)
		dir_token=$(curl -fsS -d grant_type=password -d username=owner --data-urlencode "password=$OWNER_PASSWORD" "$url/mgmt/v1/token" | json_field access_token)
		BREFRESH[$t]=$(curl -fsS -d grant_type=access_token --data-urlencode "access_token=$dir_token" -d "service=127.0.0.1:${PORT[$t]}" "$url/oauth2/exchange" | json_field refresh_token)
		# A service principal that pulls with a federated credential (a Kubernetes service account's).
		BFED[$t]=$("$WORK/bin/berth" sp create -n bench-federated --query appId -o tsv)
		"$WORK/bin/berth" role assignment create --assignee "${BFED[$t]}" --role AcrPull --scope /registries/default -o none
		"$WORK/bin/berth" sp federated-credential create --id "${BFED[$t]}" -n bench --issuer "$ISSUER" --subject system:serviceaccount:bench:puller -o none
		[ -n "${BPASS[$t]}" ] && [ -n "${BREFRESH[$t]}" ] && [ -n "${BFED[$t]}" ] || { log "$t set-up failed"; exit 1; }
		stop
		;;
	distribution-*)
		htpasswd -Bbc "$WORK/htpasswd" "$USER_NAME" "$PASSWORD" 2>/dev/null
		storage="  filesystem:
    rootdirectory: ${DATA[$t]}"
		if [ "$t" = distribution-3-s3 ]; then
			# Its S3 driver on the same MinIO, under a prefix of its own; blobs served through the
			# registry as berth serves them (Distribution's default redirects clients to S3).
			STORAGE[$t]=$(s3_url "$t")
			endpoint=$(sed -n 's/.*[?&]endpoint=\([^&]*\).*/\1/p' <<<"$S3_URL")
			bucket=$(sed -n 's#^s3://\([^/?]*\).*#\1#p' <<<"$S3_URL")
			storage="  s3:
    accesskey: $AWS_ACCESS_KEY_ID
    secretkey: $AWS_SECRET_ACCESS_KEY
    region: us-east-1
    regionendpoint: http://$endpoint
    forcepathstyle: true
    secure: false
    bucket: $bucket
    rootdirectory: /$t
  redirect:
    disable: true"
		fi
		# Debian's configuration, with the data folder (or bucket), port and htpasswd file of this run.
		cat >"$WORK/$t.yml" <<-EOF
			version: 0.1
			log:
			  fields:
			    service: registry
			storage:
			  cache:
			    blobdescriptor: inmemory
			$storage
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
	*) log "unknown target $t (berth, distribution-3, distribution-2.8; berth-s3, berth-s3x3, distribution-3-s3)"; exit 2 ;;
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

for round in $(seq "$ROUNDS"); do
	for t in "${TARGET_LIST[@]}"; do
		log "round $round/$ROUNDS: $t"
		# Write back what the previous run left dirty, so that it does not slow this one down.
		sync
		start "$t"
		user=$USER_NAME BENCH_PASSWORD=$PASSWORD extra=()
		case $t in berth*)
			user=default BENCH_PASSWORD=${BPASS[$t]} BENCH_REFRESH=${BREFRESH[$t]}
			extra=(--refresh-token-env BENCH_REFRESH --federated-user "${BFED[$t]}" --federated-token-env BENCH_FEDERATED)
			# A fresh token each round: the issuer's live ten minutes.
			BENCH_FEDERATED=$(curl -fsS "$ISSUER/token?sub=system:serviceaccount:bench:puller&aud=api://BerthTokenExchange")
			export BENCH_FEDERATED BENCH_REFRESH
			;;
		esac
		export BENCH_PASSWORD
		[ -n "${STORAGE[$t]:-}" ] && extra+=(--s3-limit "${STORAGE[$t]}")
		[ -n "$PID" ] && extra+=(--pid "$PID")
		sleep 1 # let the server settle before its idle RSS is read
		"$WORK/bin/berth-bench" run "http://127.0.0.1:${PORT[$t]}" -u "$user" --password-env BENCH_PASSWORD "${extra[@]}" \
			--target "$t" --limit-dir "${DATA[$t]}" --json "$RESULTS" -q "${SIZES[@]}" "${EXTRA[@]}" \
			>"$WORK/$t-round$round.txt" || { stop; log "berth-bench failed against $t"; cat "$WORK/$t-round$round.txt" >&2; exit 1; }
		stop
	done
done

"$WORK/bin/berth-bench" compare --base "${TARGET_LIST[0]}" "$RESULTS" | tee "$WORK/table.md"
log "results: $RESULTS; table: $WORK/table.md"
