#!/usr/bin/env bash
# Issue 4's authorization scenarios with real clients, against a berth of its own (started here
# with 127.0.0.1 as a trusted proxy, so that X-Forwarded-For stands in for other addresses):
# a service principal with AcrPull; the switch to rbac-abac (old token 401, AcrPull no longer
# honoured, Repository Reader with a prefix condition); anonymous pull next to a docker login
# that still pushes; network rules with default action Deny. `berth explain` names the deciding
# rule in each. Needs BERTH (the berth binary), and docker crane skopeo curl on PATH.
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${BERTH:?set BERTH to the berth binary}"
source "$HERE/own-server.sh"
own_server BERTH_NETWORK_TRUSTED_PROXIES=127.0.0.1

source "$HERE/lib.sh"
explains() { # PATTERN explain-args…: berth explain prints PATTERN
	local pattern=$1; shift
	local out
	out=$(berth explain -n default "$@") || { echo "$out"; return 1; }
	echo "$out" | has -- "$pattern" || { echo "explain without '$pattern':"; echo "$out"; return 1; }
}
token_for() { # USER:PASSWORD SCOPE → an access token
	curl -fsS -u "$1" "http://$REG/oauth2/token?service=$REG&scope=$2" | sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p'
}
head -c 100000 /dev/urandom >rand.bin && tar -cf layer.tar rand.bin

setup() {
	printf '%s' "$OWNER_PASSWORD" | berth auth login --server "http://$REG" -u owner --password-stdin &&
	berth login -n default && push team-a/x:v1 && push team-b/x:v1 && push public/x:v1 &&
	out=$(berth sp create -n puller) &&
	SP=$(echo "$out" | sed -n 's/.*"appId": "\([^"]*\)".*/\1/p') && SECRET=$(echo "$out" | sed -n 's/.*"password": "\([^"]*\)".*/\1/p') &&
	[ -n "$SP" ] && [ -n "$SECRET" ] &&
	berth role assignment create --assignee "$SP" --role AcrPull --scope /registries/default >/dev/null
}
step "owner pushes team-a/x, team-b/x, public/x (berth login); service principal gets AcrPull" setup

acrpull() {
	docker logout "$REG" >/dev/null; dlogin "$SP" "$SECRET" &&
	crane manifest --insecure "$REG/team-a/x:v1" >/dev/null &&
	skopeo inspect --tls-verify=false "docker://$REG/team-b/x:v1" >/dev/null &&
	expect_refusal '401\|UNAUTHORIZED\|denied' push team-a/x:v2 &&
	insufficient_scope "$SP:$SECRET" team-a/x &&
	explains 'access: denied (no_role_assignment)' --identity "$SP" --repository team-a/x --action push &&
	explains 'allowed (role_assignment).*AcrPull' --identity "$SP" --repository team-a/x --action pull
}
step "AcrPull: crane and skopeo pull; push refused with insufficient_scope; explain says why" acrpull

mode_switch() {
	OLD=$(token_for "$SP:$SECRET" "repository:team-a/x:pull") && [ -n "$OLD" ] &&
	[ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $OLD" "http://$REG/v2/team-a/x/manifests/v1")" = 200 ] &&
	berth registry update -n default --role-assignment-mode rbac-abac >/dev/null &&
	hdr=$(curl -s -D - -o body.json -H "Authorization: Bearer $OLD" "http://$REG/v2/team-a/x/manifests/v1") &&
	echo "$hdr" | has '^HTTP/1.1 401' && echo "$hdr" | has -i 'error="invalid_token"' &&
	grep -q 'it is now in mode rbac-abac' body.json &&
	expect_refusal '401\|UNAUTHORIZED\|denied' crane manifest --insecure "$REG/team-a/x:v1" &&
	explains 'AcrPull (assignment .*) is not honoured in mode rbac-abac' --identity "$SP" --repository team-a/x --action pull
}
step "rbac-abac: the token from before the switch gets 401 invalid_token; AcrPull no longer honoured" mode_switch

abac_reader() {
	berth role assignment create --assignee "$SP" --role "Container Registry Repository Reader" --scope /registries/default \
		--condition "@Request[Microsoft.ContainerRegistry/registries/repositories:name] StringStartsWithIgnoreCase 'team-a/'" \
		--condition-version 2.0 >/dev/null &&
	crane manifest --insecure "$REG/team-a/x:v1" >/dev/null &&
	skopeo inspect --tls-verify=false "docker://$REG/team-a/x:v1" >/dev/null &&
	expect_refusal '401\|UNAUTHORIZED\|denied' crane manifest --insecure "$REG/team-b/x:v1" &&
	crane catalog --insecure "$REG" >catalog.txt && grep -qx team-a/x catalog.txt && ! grep -q team-b catalog.txt &&
	explains 'condition_not_met' --identity "$SP" --repository team-b/x --action pull &&
	explains 'its condition holds' --identity "$SP" --repository team-a/x --action pull
}
step "Repository Reader with StringStartsWithIgnoreCase 'team-a/': pulls team-a/x, not team-b/x; catalog filtered" abac_reader

anonymous() {
	berth registry update -n default --admin-enabled true --role-assignment-mode rbac --anonymous-pull-enabled true >creds.json &&
	ADMIN=$(sed -n 's/.*"value": "\([^"]*\)".*/\1/p' creds.json | sed -n 1p) && [ -n "$ADMIN" ] &&
	echo '{}' >"$WORK/empty-auth.json" &&
	REGISTRY_AUTH_FILE=$WORK/empty-auth.json DOCKER_CONFIG=$WORK/nowhere skopeo inspect --tls-verify=false "docker://$REG/team-b/x:v1" >/dev/null &&
	curl -s -D - -o /dev/null "http://$REG/v2/" | has -i '^www-authenticate: Bearer realm=' &&
	docker logout "$REG" >/dev/null && dlogin default "$ADMIN" && push private/a:v1 &&
	expect_refusal '401\|UNAUTHORIZED' env DOCKER_CONFIG=$WORK/nowhere REGISTRY_AUTH_FILE=$WORK/empty-auth.json crane append --insecure --oci-empty-base -f layer.tar -t "$REG/private/b:v1" &&
	berth registry update -n default --anonymous-pull-enabled false --anonymous-pull-repositories 'public/*' >/dev/null &&
	REGISTRY_AUTH_FILE=$WORK/empty-auth.json DOCKER_CONFIG=$WORK/nowhere skopeo inspect --tls-verify=false "docker://$REG/public/x:v1" >/dev/null &&
	expect_refusal 'unauthorized\|401\|authentication required' env REGISTRY_AUTH_FILE=$WORK/empty-auth.json DOCKER_CONFIG=$WORK/nowhere \
		skopeo inspect --tls-verify=false "docker://$REG/team-a/x:v1" &&
	explains "anonymous pull is enabled for 'public/\*'" --identity anonymous --repository public/x --action pull
}
step "anonymous pull: skopeo pulls without credentials, /v2/ still challenges, docker login still pushes private/a; then only public/*" anonymous

network() {
	berth registry update -n default --default-action Deny >/dev/null &&
	berth network-rule add -n default --ip-address 203.0.113.0/24 >/dev/null &&
	expect_refusal "403 Forbidden" dlogin default "$ADMIN" &&
	expect_refusal "client with IP '127.0.0.1' is not allowed access" crane manifest --insecure "$REG/team-a/x:v1" &&
	body=$(curl -s -w ' %{http_code}' -H 'X-Forwarded-For: 198.51.100.7' "http://$REG/v2/") &&
	echo "$body" | has "\"code\":\"DENIED\".*client with IP '198.51.100.7' is not allowed access.* 403$" &&
	[ "$(curl -s -o /dev/null -w '%{http_code}' -H 'X-Forwarded-For: 198.51.100.7' "http://$REG/oauth2/token?service=$REG")" = 403 ] &&
	[ "$(curl -s -o /dev/null -w '%{http_code}' -u "default:$ADMIN" -H 'X-Forwarded-For: 203.0.113.9' "http://$REG/v2/team-a/x/manifests/v1")" = 200 ] &&
	berth registry show -n default >/dev/null &&
	explains "network: refused before authentication from 198.51.100.7" --identity admin --repository team-a/x --action pull --ip 198.51.100.7 &&
	berth network-rule add -n default --ip-address 127.0.0.1 >/dev/null && dlogin default "$ADMIN" &&
	crane manifest --insecure "$REG/team-a/x:v1" >/dev/null &&
	berth registry update -n default --public-network-enabled false >/dev/null &&
	expect_refusal "is not allowed access" crane manifest --insecure "$REG/team-a/x:v1" &&
	berth registry update -n default --public-network-enabled true --default-action Allow >/dev/null
}
step "network rules: default Deny refuses docker login (403) and crane with the 403 text; X-Forwarded-For inside works; mgmt API unaffected" network

echo "access scenario: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
