#!/usr/bin/env bash
# The identity scenario with real clients against a running berth at $1 (host:port): the berth
# CLI manages credentials, the docker CLI (no daemon: it logs in client-side) stores them, and
# crane, skopeo and oras push and pull with what docker stored, exactly as far as each credential
# allows. $2 is the server's log, checked at the end for every secret the scenario handled.
# Needs: BERTH (the berth binary), BERTH_OWNER_PASSWORD, and docker crane skopeo oras on PATH.
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REG=${1:?usage: auth.sh HOST:PORT SERVER_LOG}
SERVER_LOG=${2:?usage: auth.sh HOST:PORT SERVER_LOG}
: "${BERTH:?set BERTH to the berth binary}" "${BERTH_OWNER_PASSWORD:?set BERTH_OWNER_PASSWORD}"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
export HOME=$WORK/home BERTH_CONFIG_DIR=$WORK/berth DOCKER_CONFIG=$WORK/docker
export REGISTRY_AUTH_FILE=$DOCKER_CONFIG/config.json
mkdir -p "$HOME" "$DOCKER_CONFIG"
secrets=()

source "$HERE/lib.sh"
head -c 200000 /dev/urandom >rand.bin && tar -cf layer.tar rand.bin

step "owner signs in (berth auth login --password-stdin)" \
	bash -c "printf '%s' \"\$BERTH_OWNER_PASSWORD\" | '$BERTH' auth login --server http://$REG -u owner --password-stdin"

# --- admin user: both passwords, renewing one leaves the other ----------------------------------
admin() {
	berth registry update -n default --admin-enabled true >/dev/null &&
	P1=$(berth credential renew -n default --password-name password --query "passwords[?name=='password'].value | [0]" -o tsv) &&
	P2=$(berth credential renew -n default --password-name password2 --query "passwords[?name=='password2'].value | [0]" -o tsv) &&
	[ -n "$P1" ] && [ -n "$P2" ] && secrets+=("$P1" "$P2") &&
	dlogin default "$P1" && push admin/a:v1 &&
	dlogin default "$P2" && push admin/a:v2 &&
	NEW2=$(berth credential renew -n default --password-name password2 --query "passwords[?name=='password2'].value | [0]" -o tsv) &&
	secrets+=("$NEW2") &&
	refused dlogin default "$P2" && dlogin default "$P1" && dlogin default "$NEW2" &&
	[ "$(berth credential show -n default --query 'passwords[0].value' -o tsv)" = "$P1" ]
}
step "admin user: docker login with password and password2; renew password2; old one refused; credential show reads the current one" admin

# --- a repository-scoped token -----------------------------------------------------------------
token() {
	TOK=$(berth token create -n ci-samples -r default --repository 'samples/*' content/read content/write \
		--query 'credentials.passwords[0].value' -o tsv) && [ -n "$TOK" ] && secrets+=("$TOK") &&
	docker logout "$REG" >/dev/null && dlogin ci-samples "$TOK" &&
	push samples/a:v1 &&
	skopeo copy --dest-tls-verify=false "docker://$REG/samples/a:v1" "docker://$REG/samples/copied:v1" --src-tls-verify=false &&
	echo hello >hello.txt && oras push --plain-http "$REG/samples/oras:v1" hello.txt:text/plain &&
	mkdir -p out && oras pull --plain-http "$REG/samples/oras:v1" -o out && cmp hello.txt out/hello.txt &&
	expect_refusal '401' push other/b:v1 &&
	insufficient_scope "ci-samples:$TOK" other/b &&
	expect_refusal 'UNAUTHORIZED\|denied\|401' skopeo copy --dest-tls-verify=false --src-tls-verify=false "docker://$REG/samples/a:v1" "docker://$REG/other/b:v1" &&
	crane catalog --insecure "$REG" >catalog.txt && grep -qx samples/a catalog.txt && ! grep -qv '^samples/' catalog.txt
}
step "token samples/* read+write: pushes samples/a (crane, skopeo, oras); other/b refused with insufficient_scope; catalog filtered to samples/" token

scope_change() {
	berth scope-map update -n ci-samples-scope-map -r default --remove-repository 'samples/*' content/write >/dev/null &&
	expect_refusal 'content/write' push samples/a:v2 &&
	crane manifest --insecure "$REG/samples/a:v1" >/dev/null &&
	berth scope-map update -n ci-samples-scope-map -r default --add-repository 'samples/*' content/write >/dev/null &&
	push samples/a:v2
}
step "a scope-map change applies at once to the token's stored credentials" scope_change

disabled() {
	berth token update -n ci-samples -r default --status disabled >/dev/null &&
	refused dlogin ci-samples "$TOK" &&
	curl -s -u "ci-samples:$TOK" "http://$REG/v2/" | has 'token is disabled' &&
	berth token update -n ci-samples -r default --status enabled >/dev/null && dlogin ci-samples "$TOK"
}
step "disabled token: docker login refused, the reply says 'token is disabled'" disabled

# --- directory sign-in: berth login (null GUID + refresh token) ---------------------------------
null_guid() {
	docker logout "$REG" >/dev/null && berth login -n default &&
	grep -q identitytoken "$DOCKER_CONFIG/config.json" &&
	grep -q "$(printf '00000000-0000-0000-0000-000000000000:' | base64)" "$DOCKER_CONFIG/config.json" &&
	push other/b:v1 && crane manifest --insecure "$REG/samples/a:v1" >/dev/null &&
	skopeo inspect --tls-verify=false "docker://$REG/other/b:v1" >/dev/null &&
	RT=$(berth login -n default --expose-token --query refreshToken -o tsv 2>/dev/null) && [ -n "$RT" ] && secrets+=("$RT") &&
	docker logout "$REG" >/dev/null && dlogin 00000000-0000-0000-0000-000000000000 "$RT" &&
	push other/c:v1
}
step "berth login stores the null-GUID refresh token with docker; --expose-token works with docker login" null_guid

podman_login() {
	local authfile=$WORK/podman-auth.json
	echo '{}' >"$authfile"
	mkdir -p "$WORK/empty-docker"
	# podman also reads docker's config, and refuses to log in over an identity token it finds there
	DOCKER_CONFIG=$WORK/empty-docker DOCKER_COMMAND=podman REGISTRY_AUTH_FILE=$authfile berth login -n default &&
	grep -q "$REG" "$authfile" &&
	REGISTRY_AUTH_FILE=$authfile skopeo inspect --tls-verify=false "docker://$REG/other/b:v1" >/dev/null
}
step "DOCKER_COMMAND=podman berth login: podman stores the refresh token, skopeo pulls with it" podman_login

docker_missing() {
	DOCKER_COMMAND=no-such-docker expect_refusal DOCKER_COMMAND_ERROR berth login -n default
}
step "berth login without the docker command: DOCKER_COMMAND_ERROR" docker_missing

# --- a service principal: signs in, but has no data-plane role yet ------------------------------
sp() {
	local out id secret
	out=$(berth sp create -n ci-robot) && id=$(echo "$out" | sed -n 's/.*"appId": "\([^"]*\)".*/\1/p') &&
	secret=$(echo "$out" | sed -n 's/.*"password": "\([^"]*\)".*/\1/p') && [ -n "$secret" ] && secrets+=("$secret") &&
	docker logout "$REG" >/dev/null && dlogin "$id" "$secret" &&
	expect_refusal '401' push sprobot/a:v1 &&
	curl -s -X POST -u "$id:$secret" "http://$REG/v2/sprobot/a/blobs/uploads/" | has 'no role assignment gives service principal' &&
	refused dlogin "$id" "wrong-secret"
}
step "service principal: docker login works, pushes refused until it has a role" sp

anonymous() {
	docker logout "$REG" >/dev/null
	expect_refusal 'UNAUTHORIZED\|401' push anon/a:v1
}
step "no credentials: push refused" anonymous

no_secrets() {
	local s
	[ "${#secrets[@]}" -ge 6 ] || { echo "only ${#secrets[@]} secrets collected"; return 1; }
	for s in "${secrets[@]}" "$BERTH_OWNER_PASSWORD"; do
		if grep -qF -- "$s" "$SERVER_LOG"; then echo "a secret appears in the server log"; return 1; fi
	done
}
step "no secret of the scenario appears in the server log" no_secrets

echo "auth scenario: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
