# Sourced by the scenarios that run against a berth of their own (needs BERTH).
# own_server [NAME=VALUE…] makes a temporary folder ($WORK, removed at exit, which also holds the
# scenario's home and its berth, docker and podman configuration), starts berth serve on a free
# loopback port with the owner's password $OWNER_PASSWORD and the given environment, waits until
# it is ready, and sets REG (host:port) and SERVER_PID.
own_server() {
	WORK=$(mktemp -d)
	SERVER_PID=
	trap '[ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"' EXIT
	cd "$WORK" || exit 1
	export HOME=$WORK/home BERTH_CONFIG_DIR=$WORK/berth DOCKER_CONFIG=$WORK/docker
	export REGISTRY_AUTH_FILE=$DOCKER_CONFIG/config.json
	mkdir -p "$HOME" "$DOCKER_CONFIG"
	OWNER_PASSWORD=$(head -c 24 /dev/urandom | base64 | tr -d '/+=')
	env BERTH_BOOTSTRAP_PASSWORD="$OWNER_PASSWORD" "$@" "$BERTH" serve --listen 127.0.0.1:0 --data-dir "$WORK/data" >"$WORK/serve.log" 2>&1 &
	SERVER_PID=$!
	REG=
	for _ in $(seq 100); do
		REG=$(sed -n 's/.*"msg":"berth is serving","addr":"\([^"]*\)".*/\1/p' "$WORK/serve.log" | sed -n 1p)
		[ -n "$REG" ] && curl -fsS "http://$REG/readyz" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	echo "berth did not start"
	cat "$WORK/serve.log"
	exit 1
}
