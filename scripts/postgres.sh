#!/usr/bin/env bash
# Starts or stops a throw-away PostgreSQL for the tests: Debian's server (installed when missing),
# a cluster in a temporary folder owned by an ordinary user, trust authentication, loopback only.
#   scripts/postgres.sh start DIR   → prints the DSN (postgres://…) as its last line
#   scripts/postgres.sh stop DIR
#   scripts/postgres.sh resume DIR   starts the stopped cluster again, same port and data (a restart
#                                    is stop then resume; test/faults uses it)
set -euo pipefail
cmd=${1:?start or stop}
DIR=${2:?data folder}
log() { echo "postgres.sh: $*" >&2; }

bindir() {
	local d
	d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
	[ -n "$d" ] && [ -x "$d/postgres" ] && echo "$d"
}

# run_as USER command…: PostgreSQL refuses to run as root.
run_as() {
	local user=$1; shift
	if [ "$(id -u)" -eq 0 ]; then
		runuser -u "$user" -- "$@"
	else
		"$@"
	fi
}

# pg_start starts the cluster in $DIR on the port in $DIR/port, as $USER_NAME, with $BIN.
pg_start() {
	run_as "$USER_NAME" "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w -t 30 \
		-o "-c listen_addresses=127.0.0.1 -p $(cat "$DIR/port") -k $DIR -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" start >&2 ||
		{ cat "$DIR/server.log" >&2; exit 1; }
}

case $cmd in
start)
	BIN=$(bindir || true)
	if [ -z "$BIN" ]; then
		[ "$(id -u)" -eq 0 ] || { log "PostgreSQL is not installed and installing it needs root"; exit 1; }
		log "apt-get install postgresql"
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq >&2
		apt-get install -y -qq --no-install-recommends postgresql >&2
		BIN=$(bindir)
	fi
	USER_NAME=$(id -un)
	if [ "$(id -u)" -eq 0 ]; then
		USER_NAME=postgres
		id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
	fi
	rm -rf "$DIR" && mkdir -p "$DIR"
	[ "$(id -u)" -eq 0 ] && chown "$USER_NAME" "$DIR"
	run_as "$USER_NAME" "$BIN/initdb" -D "$DIR/data" -U berth --auth=trust --encoding=UTF8 --locale=C.UTF-8 >"$DIR/initdb.log" 2>&1 ||
		{ cat "$DIR/initdb.log" >&2; exit 1; }
	# A free loopback port.
	PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	echo "$PORT" >"$DIR/port"
	pg_start
	echo "postgres://berth@127.0.0.1:$PORT/postgres?sslmode=disable"
	;;
stop)
	BIN=$(bindir || true)
	[ -n "$BIN" ] && [ -d "$DIR/data" ] || exit 0
	USER_NAME=$(stat -c %U "$DIR/data")
	run_as "$USER_NAME" "$BIN/pg_ctl" -D "$DIR/data" -m fast -w stop >&2 || true
	;;
resume)
	BIN=$(bindir) && [ -f "$DIR/port" ] || { log "no cluster in $DIR: start one first"; exit 1; }
	USER_NAME=$(stat -c %U "$DIR/data")
	pg_start
	;;
*)
	log "usage: $0 start|stop|resume DIR"; exit 2 ;;
esac
