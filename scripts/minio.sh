#!/usr/bin/env bash
# Starts or stops a throw-away MinIO (the S3 server) for the tests, on loopback with a temporary
# folder. The binary comes from scripts/install-test-tools.sh (go install, pinned).
#   scripts/minio.sh start DIR   → prints the storage URL (s3://…) as its last line; the
#                                  credentials are in DIR/env (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)
#   scripts/minio.sh stop DIR
set -euo pipefail
cmd=${1:?start or stop}
DIR=${2:?data folder}
log() { echo "minio.sh: $*" >&2; }
case $cmd in
start)
	command -v minio >/dev/null || { log "minio is not on PATH: run scripts/install-test-tools.sh first"; exit 1; }
	rm -rf "$DIR" && mkdir -p "$DIR/data"
	port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
	PORT=$(port) CONSOLE=$(port)
	USER_KEY=berth-test SECRET=$(head -c 24 /dev/urandom | base64 | tr -d '/+=')
	MINIO_ROOT_USER=$USER_KEY MINIO_ROOT_PASSWORD=$SECRET MINIO_BROWSER=off MINIO_UPDATE=off \
		nohup minio server "$DIR/data" --quiet --address "127.0.0.1:$PORT" --console-address "127.0.0.1:$CONSOLE" >"$DIR/server.log" 2>&1 &
	echo $! >"$DIR/pid"
	for _ in $(seq 100); do
		curl -fsS "http://127.0.0.1:$PORT/minio/health/live" >/dev/null 2>&1 && break
		sleep 0.2
	done
	curl -fsS "http://127.0.0.1:$PORT/minio/health/live" >/dev/null || { cat "$DIR/server.log" >&2; exit 1; }
	printf 'export AWS_ACCESS_KEY_ID=%s AWS_SECRET_ACCESS_KEY=%s\n' "$USER_KEY" "$SECRET" >"$DIR/env"
	echo "s3://berth-test?endpoint=127.0.0.1:$PORT&insecure=true&path_style=true&region=us-east-1&create_bucket=true"
	;;
stop)
	[ -f "$DIR/pid" ] && kill "$(cat "$DIR/pid")" 2>/dev/null || true
	;;
*) log "usage: $0 start|stop DIR"; exit 2 ;;
esac
