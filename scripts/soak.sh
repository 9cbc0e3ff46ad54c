#!/usr/bin/env bash
# Soak test (issue 16): a fresh berth under mixed load for N minutes — pushes, pulls, manifest
# HEADs, token requests, anonymous requests, a slow client (berth-bench's soak section) and
# management changes (token create/update/delete through the berth CLI) — then reports failed
# requests and the server's RSS over time. It fails on any failed request, or when RSS at the end
# is more than 20 % over RSS after warm-up.
#   scripts/soak.sh [--minutes N] [--keep]     (default 10; CI runs 1)
set -euo pipefail
cd "$(dirname "$0")/.."
MINUTES=10 KEEP=0
while [ $# -gt 0 ]; do
	case $1 in
	--minutes) MINUTES=$2; shift 2 ;;
	--keep) KEEP=1; shift ;;
	*) echo "usage: scripts/soak.sh [--minutes N] [--keep]" >&2; exit 2 ;;
	esac
done
log() { echo "soak.sh: $*" >&2; }
WORK=$(mktemp -d /tmp/berth-soak.XXXXXX)
mkdir -p "$WORK/bin" "$WORK/data"
go build -o "$WORK/bin/berth" ./cmd/berth
go build -o "$WORK/bin/berth-bench" ./cmd/berth-bench
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
URL=http://127.0.0.1:$PORT
OWNER_PASSWORD=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
export BERTH_CONFIG_DIR=$WORK/cli
PID="" MGMT=""
cleanup() {
	[ -n "$MGMT" ] && kill "$MGMT" 2>/dev/null || true
	[ -n "$PID" ] && { kill -TERM "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; }
	[ "$KEEP" = 1 ] || rm -rf "$WORK"
}
trap cleanup EXIT
BERTH_BOOTSTRAP_PASSWORD=$OWNER_PASSWORD "$WORK/bin/berth" serve --listen "127.0.0.1:$PORT" --data-dir "$WORK/data" --log-level warn >"$WORK/berth.log" 2>&1 &
PID=$!
for _ in $(seq 200); do
	[ "$(curl -s -o /dev/null -w '%{http_code}' "$URL/readyz" || true)" = 200 ] && break
	sleep 0.05
done
printf '%s' "$OWNER_PASSWORD" | "$WORK/bin/berth" auth login --server "$URL" -u owner --password-stdin >/dev/null
export SOAK_PASSWORD
SOAK_PASSWORD=$("$WORK/bin/berth" registry update -n default --admin-enabled true --query 'credentials.passwords[0].value' -o tsv)

# Management changes through the CLI for as long as the load runs: each failure is counted.
(
	i=0 fail=0
	while :; do
		name=soak-token-$((i % 5))
		"$WORK/bin/berth" token create -n "$name" -r default --scope-map _repositories_pull --no-passwords >/dev/null 2>>"$WORK/mgmt.err" || fail=$((fail + 1))
		"$WORK/bin/berth" token update -n "$name" -r default --status disabled >/dev/null 2>>"$WORK/mgmt.err" || fail=$((fail + 1))
		"$WORK/bin/berth" token delete -n "$name" -r default --yes >/dev/null 2>>"$WORK/mgmt.err" || fail=$((fail + 1))
		i=$((i + 1))
		echo "$i $fail" >"$WORK/mgmt.count"
		sleep 0.5
	done
) &
MGMT=$!

log "mixed load for ${MINUTES}m against $URL (pid $PID)"
status=0
"$WORK/bin/berth-bench" run "$URL" -u default --password-env SOAK_PASSWORD --pid "$PID" --sections soak \
	--duration "${MINUTES}m" --json "$WORK/soak.json" --target berth || status=1
kill "$MGMT" 2>/dev/null || true
wait "$MGMT" 2>/dev/null || true
MGMT=""
read -r rounds mfail <"$WORK/mgmt.count" || { rounds=0; mfail=1; }
log "management: $rounds rounds of token create/update/delete, $mfail failed"
if [ "$rounds" -lt 1 ] || [ "$mfail" -gt 0 ]; then
	head -5 "$WORK/mgmt.err" >&2 || true
	status=1
fi
growth=$(python3 -c 'import json,sys
ms={m["name"]:m["value"] for m in json.load(open(sys.argv[1]))["metrics"]}
print(ms.get("soak server RSS growth", "none"))' "$WORK/soak.json" 2>/dev/null || echo none)
log "server RSS growth after warm-up: $growth %"
if [ "$growth" = none ] || python3 -c 'import sys; sys.exit(0 if float(sys.argv[1]) <= 20 else 1)' "$growth"; then :; else
	log "RSS grew more than 20 % after warm-up"
	status=1
fi
[ "$growth" = none ] && { log "no RSS figures: the run was too short"; status=1; }
if grep -q '"level":"ERROR"' "$WORK/berth.log"; then
	log "the server logged errors:"; grep '"level":"ERROR"' "$WORK/berth.log" | head -5 >&2
	status=1
fi
[ $status = 0 ] && log "ok: no failed request, RSS flat" || log "FAILED"
exit $status
