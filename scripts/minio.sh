#!/usr/bin/env bash
# Starts or stops a throw-away MinIO (the S3 server) for the tests, on loopback with a temporary
# folder. The binary comes from scripts/install-test-tools.sh (go install, pinned).
#   scripts/minio.sh start DIR   → prints the storage URL (s3://…) as its last line; the
#                                  credentials are in DIR/env (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)
#   scripts/minio.sh stop DIR       (waits until the server is gone)
#   scripts/minio.sh resume DIR     starts the stopped server again, same port, data and credentials
set -euo pipefail
cmd=${1:?start or stop}
DIR=${2:?data folder}
log() { echo "minio.sh: $*" >&2; }
# minio_start runs the server on $DIR/data with the ports and credentials saved in $DIR and
# waits until it answers.
minio_start() {
	local port console
	read -r port console <"$DIR/ports"
	source "$DIR/env"
	MINIO_ROOT_USER=$AWS_ACCESS_KEY_ID MINIO_ROOT_PASSWORD=$AWS_SECRET_ACCESS_KEY MINIO_BROWSER=off MINIO_UPDATE=off \
		nohup minio server "$DIR/data" --quiet --address "127.0.0.1:$port" --console-address "127.0.0.1:$console" >>"$DIR/server.log" 2>&1 &
	echo $! >"$DIR/pid"
	for _ in $(seq 100); do
		curl -fsS "http://127.0.0.1:$port/minio/health/live" >/dev/null 2>&1 && break
		sleep 0.2
	done
	curl -fsS "http://127.0.0.1:$port/minio/health/live" >/dev/null || { cat "$DIR/server.log" >&2; exit 1; }
}

case $cmd in
start)
	command -v minio >/dev/null || { log "minio is not on PATH: run scripts/install-test-tools.sh first"; exit 1; }
	rm -rf "$DIR" && mkdir -p "$DIR/data"
	port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
	PORT=$(port)
	echo "$PORT $(port)" >"$DIR/ports"
	printf 'export AWS_ACCESS_KEY_ID=%s AWS_SECRET_ACCESS_KEY=%s\n' berth-test "$(head -c 24 /dev/urandom | base64 | tr -d '/+=')" >"$DIR/env"
	minio_start
	echo "s3://berth-test?endpoint=127.0.0.1:$PORT&insecure=true&path_style=true&region=us-east-1&create_bucket=true"
	;;
resume)
	[ -f "$DIR/ports" ] || { log "no server in $DIR: start one first"; exit 1; }
	minio_start
	;;
stop)
	if [ -f "$DIR/pid" ]; then
		pid=$(cat "$DIR/pid")
		kill "$pid" 2>/dev/null || true
		for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	fi
	;;
*) log "usage: $0 start|stop|resume DIR"; exit 2 ;;
esac
