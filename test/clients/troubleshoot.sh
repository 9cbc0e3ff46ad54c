#!/usr/bin/env bash
# The four-channel troubleshooting table (issue 5), with real clients against a berth of its own.
# For each cause of the seeds it drives the failure with docker, crane, skopeo or oras and checks
# what each channel says: the client's error text (ending with a correlation id), the event that
# id finds (`berth logs`), the code of `berth check-health`, and `berth explain`. It writes the
# observed table to $TABLE (default $WORK/table.md) and checks that docs/troubleshooting.md has
# the same reason and code on each cause's row. Needs BERTH, and docker crane skopeo oras curl.
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
DOCS=$HERE/../../docs/troubleshooting.md
: "${BERTH:?set BERTH to the berth binary}"
source "$HERE/own-server.sh"
own_server
TABLE=${TABLE:-$WORK/table.md}
PORT=${REG##*:}
source "$HERE/lib.sh"
head -c 100000 /dev/urandom >rand.bin && tar -cf layer.tar rand.bin
echo '| Cause | What the user sees | Event (berth logs) | check-health | explain |' >"$TABLE"
echo '|---|---|---|---|---|' >>"$TABLE"

# --- the four channels ---------------------------------------------------------------------
# fails PATTERN command…: the command fails, its output matches PATTERN; OUT holds the output
# and CORR the correlation id at the end of the server's message (if any).
fails() {
	local pattern=$1; shift
	if OUT=$("$@" 2>&1); then echo "succeeded, but should have failed: $*"; return 1; fi
	echo "$OUT" | has -- "$pattern" || { echo "output without '$pattern':"; echo "$OUT"; return 1; }
	CORR=$(echo "$OUT" | sed -n 's/.*correlation id: \([A-Z0-9]\{16\}\).*/\1/p' | tail -n 1)
	SEEN=$(echo "$OUT" | grep -o -- ".\{0,40\}$pattern.\{0,60\}" | sed -n 1p | sed 's/|/\\|/g')
}
# event KIND: the reason of the event of $CORR (login or repository), waiting for the writer.
event() {
	local kind=$1 r=
	[ -n "$CORR" ] || { echo "the client's message carries no correlation id"; return 1; }
	for _ in $(seq 50); do
		r=$(berth logs "$kind-events" --correlation-id "$CORR" --query '[0].reason' -o tsv 2>/dev/null) && [ -n "$r" ] && break
		sleep 0.1
	done
	REASON=$r
	[ -n "$REASON" ] || { echo "no $kind event with a reason for correlation id $CORR"; return 1; }
}
# login_event ARGS...: the first login event berth logs finds with ARGS, waiting for the writer.
login_event() {
	local r=
	for _ in $(seq 50); do
		r=$(berth logs login-events "$@" -o tsv 2>/dev/null) && [ -n "$r" ] && break
		sleep 0.1
	done
	[ -n "$r" ] && echo "$r"
}
# health WANT args…: the first error code of check-health (local tool codes aside, unless WANT is one)
health() {
	local want=$1; shift
	local codes
	codes=$(DOCKER_COMMAND=${HC_TOOL:-podman} berth check-health "$@" --ignore-errors --yes -o tsv --query "[?status=='error'].code" 2>/dev/null)
	case $want in DOCKER_* | HELM_*) ;; *) codes=$(echo "$codes" | grep -v '^DOCKER_\|^HELM_') ;; esac
	CODE=$(echo "$codes" | sed -n 1p)
	[ "$CODE" = "$want" ] || { echo "check-health codes: $(echo $codes), want $want first"; return 1; }
}
# explains PATTERN args…: berth explain on the default registry prints PATTERN
explains() {
	local pattern=$1; shift
	local out
	out=$(berth explain -n default "$@" 2>&1)
	echo "$out" | has -- "$pattern" || { echo "explain without '$pattern':"; echo "$out"; return 1; }
	EXPLAINED=$(echo "$out" | grep -o -- "$pattern" | sed -n 1p)
}
# row CAUSE EVENT EXPLAIN: adds the observed row to the table
row() { printf '| %s | `%s` | %s | %s | %s |\n' "$1" "$SEEN" "$2" "$CODE" "$3" >>"$TABLE"; }
reset_docker() { echo '{}' >"$DOCKER_CONFIG/config.json"; }

setup() {
	printf '%s' "$OWNER_PASSWORD" | berth auth login --server "http://$REG" -u owner --password-stdin >/dev/null &&
	ADMIN=$(berth registry update -n default --admin-enabled true --query 'credentials.passwords[0].value' -o tsv) && [ -n "$ADMIN" ] &&
	reset_docker && dlogin default "$ADMIN" >/dev/null 2>&1 && push team/app:v1 >/dev/null 2>&1
}
step "owner signs in, the admin user pushes team/app:v1" setup

docker_missing() {
	fails "DOCKER_COMMAND_ERROR" env DOCKER_COMMAND=no-such-docker "$BERTH" login -n default && HC_TOOL=no-such-docker health DOCKER_COMMAND_ERROR -n default &&
	row "docker/podman missing" "—" "—" &&
	fails "Cannot connect to the Docker daemon" docker pull "$REG/team/app:v1" && HC_TOOL=docker health DOCKER_DAEMON_ERROR -n default &&
	row "docker daemon down" "—" "—"
}
step "docker missing (DOCKER_COMMAND_ERROR) or its daemon down (DOCKER_DAEMON_ERROR)" docker_missing

wrong_name() {
	fails "registry \"nosuch\" was not found" berth login -n nosuch && health LOGIN_SERVER_ERROR -n nosuch &&
	row "registry name wrong" "—" "—" &&
	fails "no such host" docker login nosuch.invalid -u default -p x && health CONNECTIVITY_DNS_ERROR -n nosuch.invalid --plain-http &&
	row "login server wrong" "—" "—"
}
step "registry name wrong: berth login LOGIN_SERVER_ERROR, docker 'no such host' (CONNECTIVITY_DNS_ERROR)" wrong_name

upper_case() {
	reset_docker && printf '%s' "$ADMIN" | docker login "LOCALHOST:$PORT" -u default --password-stdin >/dev/null 2>&1 &&
	fails "anonymous pull is not enabled" crane manifest --insecure "localhost:$PORT/team/app:v1" && event repository && [ "$REASON" = anonymous ] &&
	health REGISTRY_NAME_UPPERCASE_ERROR -n "localhost:$PORT" --plain-http &&
	explains "anonymous pull is not enabled" --identity anonymous --repository team/app --action pull &&
	row "registry name in upper case" "repository: \`$REASON\`" "\`$EXPLAINED\`"
}
step "upper case: docker login LOCALHOST stores credentials crane does not use for localhost" upper_case

admin_disabled() {
	reset_docker && dlogin default "$ADMIN" >/dev/null 2>&1 && berth registry update -n default --admin-enabled false >/dev/null &&
	fails "admin user is disabled" crane manifest --insecure "$REG/team/app:v1" && event login && [ "$REASON" = admin_disabled ] &&
	health STORED_CREDENTIALS_INVALID_ERROR -n default && explains "admin_disabled" --identity admin --repository team/app --action pull &&
	row "admin user disabled" "login: \`$REASON\`" "\`$EXPLAINED\`"
}
step "admin user disabled" admin_disabled

token_disabled() {
	TOKPWD=$(berth token create -n ci-token -r default --repository team/app content/read --query 'credentials.passwords[0].value' -o tsv) && [ -n "$TOKPWD" ] &&
	reset_docker && dlogin ci-token "$TOKPWD" >/dev/null 2>&1 && berth token update -n ci-token -r default --status disabled >/dev/null &&
	fails "token is disabled" skopeo inspect --tls-verify=false "docker://$REG/team/app:v1" && event login && [ "$REASON" = token_disabled ] &&
	health STORED_CREDENTIALS_INVALID_ERROR -n default && explains "token_disabled" --identity token:ci-token --repository team/app --action pull &&
	row "token disabled" "login: \`$REASON\`" "\`$EXPLAINED\`"
}
step "token disabled" token_disabled

password_expired() {
	local at
	at=$(date -u -d '+4 seconds' +%Y-%m-%dT%H:%M:%SZ)
	EXPPWD=$(berth token create -n exp-token -r default --repository team/app content/read --expiration "$at" --query 'credentials.passwords[0].value' -o tsv) &&
	reset_docker && dlogin exp-token "$EXPPWD" >/dev/null 2>&1 && sleep 5 &&
	fails "password expired" oras manifest fetch --plain-http "$REG/team/app:v1" && event login && [ "$REASON" = password_expired ] &&
	health STORED_CREDENTIALS_EXPIRED_ERROR -n default && explains "ALLOWED" --identity token:exp-token --repository team/app --action pull &&
	row "password expired" "login: \`$REASON\`" "\`$EXPLAINED\` (the access is fine; the password is not)"
}
step "token password expired" password_expired

unknown_sp() {
	local out
	out=$(berth sp create -n gone) && GONE=$(echo "$out" | sed -n 's/.*"appId": "\([^"]*\)".*/\1/p') &&
	GONESECRET=$(echo "$out" | sed -n 's/.*"password": "\([^"]*\)".*/\1/p') &&
	berth role assignment create --assignee "$GONE" --role AcrPull --scope /registries/default >/dev/null &&
	reset_docker && dlogin "$GONE" "$GONESECRET" >/dev/null 2>&1 && berth sp delete --id "$GONE" >/dev/null &&
	fails "application not registered with the directory" crane manifest --insecure "$REG/team/app:v1" && event login && [ "$REASON" = unknown_identity ] &&
	health STORED_CREDENTIALS_INVALID_ERROR -n default && explains "was not found" --identity "$GONE" --repository team/app --action pull &&
	row "unknown service principal" "login: \`$REASON\`" "\`$EXPLAINED\`"
}
step "unknown (deleted) service principal" unknown_sp

public_off() {
	reset_docker && berth registry update -n default --public-network-enabled false >/dev/null &&
	fails "is not allowed access" crane manifest --insecure "$REG/team/app:v1" && event login && [ "$REASON" = public_access_disabled ] &&
	health CONNECTIVITY_FORBIDDEN_ERROR -n default && explains "network: refused" --identity anonymous --repository team/app --action pull --ip 127.0.0.1 &&
	row "public access disabled" "login: \`$REASON\`" "\`$EXPLAINED\`"
	local rc=$?
	berth registry update -n default --public-network-enabled true >/dev/null
	return $rc
}
step "public network access disabled" public_off

ip_denied() {
	berth registry update -n default --default-action Deny >/dev/null && berth network-rule add -n default --ip-address 203.0.113.0/24 >/dev/null &&
	fails "client with IP '127.0.0.1' is not allowed access" crane manifest --insecure "$REG/team/app:v1" && event login && [ "$REASON" = ip_denied ] &&
	health CONNECTIVITY_FORBIDDEN_ERROR -n default && explains "network: refused" --identity anonymous --repository team/app --action pull --ip 127.0.0.1 &&
	row "IP not allowed" "login: \`$REASON\`" "\`$EXPLAINED\`"
	local rc=$?
	berth registry update -n default --default-action Allow >/dev/null
	return $rc
}
step "IP not allowed by the network rules" ip_denied

not_authorized() {
	local out
	out=$(berth sp create -n puller) && SP=$(echo "$out" | sed -n 's/.*"appId": "\([^"]*\)".*/\1/p') &&
	SECRET=$(echo "$out" | sed -n 's/.*"password": "\([^"]*\)".*/\1/p') &&
	berth role assignment create --assignee "$SP" --role AcrPull --scope /registries/default >/dev/null &&
	reset_docker && dlogin "$SP" "$SECRET" >/dev/null 2>&1 &&
	fails "insufficient_scope" push team/app:v2 &&
	REASON=$(login_event --identity "$SP" --reason insufficient_scope --query '[0].reason') && [ "$REASON" = insufficient_scope ] &&
	# check-health finds no error for the pull (as health() does, its exit status is not the point)
	{ CODE=$(DOCKER_COMMAND=podman berth check-health -n default --repository team/app:v1 --yes --ignore-errors -o tsv --query "[?status=='error'].code" 2>/dev/null |
		{ grep -v '^DOCKER_\|^HELM_' || true; } | sed -n 1p); true; } &&
	{ [ -z "$CODE" ] || { echo "check-health found $CODE for a pull AcrPull allows"; false; }; } && CODE="none (pull OK)" && explains "no_role_assignment" --identity "$SP" --repository team/app --action push &&
	row "authenticated, not authorized to push" "login: \`$REASON\` (refused repository:team/app:push)" "\`$EXPLAINED\`"
}
step "authenticated but not authorized for push (AcrPull)" not_authorized

mode_switch() {
	printf '%s' "$SECRET" | berth auth login -u "$SP" --service-principal --password-stdin >/dev/null &&
	reset_docker && berth login -n default >/dev/null 2>&1
	local rc=$?
	printf '%s' "$OWNER_PASSWORD" | berth auth login -u owner --password-stdin >/dev/null || return 1
	[ $rc -eq 0 ] && crane manifest --insecure "$REG/team/app:v1" >/dev/null &&
	berth registry update -n default --role-assignment-mode rbac-abac >/dev/null && sleep 1.2 &&
	fails "it is now in mode rbac-abac" crane manifest --insecure "$REG/team/app:v1" && event login && [ "$REASON" = mode_changed ] &&
	health STORED_CREDENTIALS_INVALID_ERROR -n default && explains "mode: rbac-abac" --identity "$SP" --repository team/app --action pull &&
	row "token issued before a mode switch" "login: \`$REASON\`" "\`$EXPLAINED\`"
}
step "refresh token issued before the switch to rbac-abac" mode_switch

acrpull_abac() {
	reset_docker && dlogin "$SP" "$SECRET" >/dev/null 2>&1 &&
	fails "not honoured" crane manifest --insecure "$REG/team/app:v1" &&
	REASON=$(login_event --identity "$SP" --reason insufficient_scope --query '[0].message') &&
	echo "$REASON" | has "not honoured" && REASON=insufficient_scope &&
	health CONNECTIVITY_PULL_ERROR -n default --repository team/app:v1 &&
	explains "is not honoured in mode rbac-abac" --identity "$SP" --repository team/app --action pull &&
	row "AcrPull in rbac-abac mode" "login: \`$REASON\` (message: not honoured)" "\`$EXPLAINED\`"
	local rc=$?
	berth registry update -n default --role-assignment-mode rbac >/dev/null
	return $rc
}
step "AcrPull in rbac-abac mode" acrpull_abac

stale_anonymous() {
	berth registry update -n default --admin-enabled true --anonymous-pull-enabled true >/dev/null &&
	OLD=$(berth credential renew -n default --password-name password --query "passwords[?name=='password'].value | [0]" -o tsv) && [ -n "$OLD" ] &&
	reset_docker && dlogin default "$OLD" >/dev/null 2>&1 &&
	berth credential renew -n default --password-name password >/dev/null &&
	fails "unknown user name or wrong password" crane manifest --insecure "$REG/team/app:v1" && event login && [ "$REASON" = bad_password ] &&
	health STORED_CREDENTIALS_ANONYMOUS_PULL_ERROR -n default --repository team/app:v1 &&
	explains "anonymous_pull" --identity anonymous --repository team/app --action pull &&
	docker logout "$REG" >/dev/null && crane manifest --insecure "$REG/team/app:v1" >/dev/null &&
	row "stale credentials blocking anonymous pull" "login: \`$REASON\`" "\`$EXPLAINED\` (after docker logout the pull works)"
}
step "stale credentials block anonymous pull until docker logout" stale_anonymous

docs_agree() {
	[ -f "$DOCS" ] || { echo "no $DOCS"; return 1; }
	local ok=0 cause rest code event
	while IFS='|' read -r _ cause _ event code _; do
		cause=$(echo "$cause" | xargs) code=$(echo "$code" | xargs)
		case $cause in Cause | ---) continue ;; esac
		local line
		line=$(grep -F "| $cause |" "$DOCS" | sed -n 1p)
		[ -n "$line" ] || { echo "docs/troubleshooting.md has no row for '$cause'"; ok=1; continue; }
		reason=$(echo "$event" | grep -o '`[a-z_]*`' | sed -n 1p)
		[ -z "$reason" ] || echo "$line" | has -F -- "$reason" || { echo "'$cause': the docs do not name reason $reason"; ok=1; }
		case $code in none*) ;; *) echo "$line" | has -F -- "$code" || { echo "'$cause': the docs do not name code $code"; ok=1; } ;; esac
	done <"$TABLE"
	return $ok
}
step "docs/troubleshooting.md names the observed reason and code of every cause" docs_agree
cat "$TABLE"

echo "troubleshooting scenario: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
