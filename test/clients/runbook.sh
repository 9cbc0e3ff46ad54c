#!/usr/bin/env bash
# Issue 18's acceptance scenario: the commands an ACR runbook uses, typed as an az user types
# them, against a berth of its own, with the docker CLI (no daemon: it logs in client-side),
# skopeo and crane doing the registry work with what docker stored:
# credential show piped to docker login (every time, not only the first), token create and
# token credential generate piped to docker login, login --expose-token as the password of
# 00000000-…, berth login -n <login server>, -o none, bare boolean flags, back-tick queries,
# --yes on deletes, -p without -u refused, az's error layout, --only-show-errors, --debug.
# Needs BERTH (the berth binary), and docker crane skopeo curl on PATH.
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${BERTH:?set BERTH to the berth binary}"
source "$HERE/own-server.sh"
own_server
source "$HERE/lib.sh"
head -c 100000 /dev/urandom >rand.bin && tar -cf layer.tar rand.bin
NULL_GUID=00000000-0000-0000-0000-000000000000

step "owner signs in (-o none prints nothing)" \
	bash -c "out=\$(printf '%s' '$OWNER_PASSWORD' | '$BERTH' auth login --server http://$REG -u owner --password-stdin -o none) && [ -z \"\$out\" ]"

bare_flags() {
	local out
	out=$(berth registry update -n default --admin-enabled -o none) && [ -z "$out" ] &&
	[ "$(berth registry show -n default --query adminUserEnabled -o tsv)" = true ] &&
	berth registry update -n default --anonymous-pull-enabled false -o none &&
	[ "$(berth registry show -n default --query anonymousPullEnabled -o tsv)" = false ]
}
step "bare boolean flags: --admin-enabled alone is true, --anonymous-pull-enabled false is false" bare_flags

credential_show() {
	local i
	for i in 1 2; do
		docker logout "$REG" >/dev/null 2>&1
		berth credential show -n default --query 'passwords[0].value' -o tsv | docker login "$REG" -u default --password-stdin || return 1
		push "runbook/admin:v$i" || return 1
	done
	P2=$(berth credential show -n default --query "passwords[?name=='password2'].value | [0]" -o tsv) &&
	dlogin "$(berth credential show -n default --query username -o tsv)" "$P2" &&
	skopeo inspect --tls-verify=false "docker://$REG/runbook/admin:v2" >/dev/null &&
	[ "$(berth logs login-events -n default --operation list_credentials --query 'length(@)' -o tsv)" -ge 4 ]
}
step "credential show | docker login, twice; password2 with skopeo; each read is a login event" credential_show

token_create() {
	berth token create -n ci-runbook -r default --repository 'runbook/*' content/read content/write \
		--query 'credentials.passwords[0].value' -o tsv --only-show-errors 2>warn.txt |
		docker login "$REG" -u ci-runbook --password-stdin &&
	[ ! -s warn.txt ] &&
	push runbook/token:v1 &&
	skopeo copy --src-tls-verify=false --dest-tls-verify=false "docker://$REG/runbook/token:v1" "docker://$REG/runbook/copied:v1" &&
	expect_refusal 'UNAUTHORIZED\|401' push other/token:v1
}
step "token create | docker login: pushes runbook/* (crane, skopeo), not other/ (--only-show-errors: no warning)" token_create

token_generate() {
	local pw expiry
	pw=$(berth token credential generate -n ci-runbook -r default --password2 --expiration-in-days 30 --query 'passwords[0].value' -o tsv) &&
	expiry=$(berth token credential generate -n ci-runbook -r default --password1 --query 'passwords[0].expiry' -o tsv) &&
	[ -z "$expiry" ] && dlogin ci-runbook "$pw" && crane manifest --insecure "$REG/runbook/token:v1" >/dev/null &&
	[ "$(berth token show -n ci-runbook -r default --query "credentials.passwords[?name=='password2'] | [0].expiry != null" -o tsv)" = true ]
}
step "token credential generate --query 'passwords[0].value' | docker login (az's shape)" token_generate

expose_token() {
	local tok
	tok=$(berth login -n default --expose-token --query accessToken -o tsv) && [ -n "$tok" ] &&
	[ "$(berth login -n default --expose-token --query username -o tsv)" = "$NULL_GUID" ] &&
	docker logout "$REG" >/dev/null && dlogin "$NULL_GUID" "$tok" &&
	push runbook/exposed:v1 && crane ls --insecure "$REG/runbook/exposed" | grep -x v1 >/dev/null &&
	skopeo inspect --tls-verify=false "docker://$REG/runbook/exposed:v1" >/dev/null
}
step "login --expose-token → docker login $NULL_GUID: crane and skopeo push and pull" expose_token

login_server() {
	docker logout "$REG" >/dev/null && berth login -n "$REG" &&
	grep -q identitytoken "$DOCKER_CONFIG/config.json" && push runbook/by-login-server:v1
}
step "berth login -n <login server> (host:port), as az acr login -n takes it" login_server

backticks() {
	berth scope-map list -r default --query "[?type==\`SystemDefined\`].name" -o tsv | grep -x _repositories_pull >/dev/null &&
	[ "$(berth scope-map list -r default --query "length([?type==\`UserDefined\`])" -o tsv)" = 1 ] &&
	[ "$(berth role definition list --query "[?roleName=='AcrPull'].name | [0]" -o tsv)" = 7f951dda-4ed3-4680-a7ca-43fe172d538d ] &&
	[ "$(berth role definition list --query "length([?roleType==\`BuiltInRole\`])" -o tsv)" -ge 13 ]
}
step "back-tick literals in --query, as az users write them" backticks

refusals() {
	expect_refusal 'usage error: --password' berth login -n default -p something &&
	expect_refusal 'Use --yes' berth token delete -n ci-runbook -r default &&
	berth token show -n ci-runbook -r default -o none &&
	berth token delete -n ci-runbook -r default --yes &&
	expect_refusal 'NOT_FOUND\|not found' berth token show -n ci-runbook -r default &&
	DOCKER_COMMAND=no-such-docker berth login -n default 2>err.txt; [ $? -ne 0 ] &&
	grep -Eq '^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9:.]+ An error occurred: DOCKER_COMMAND_ERROR$' err.txt
}
step "-p without -u refused; delete asks (--yes); az's error layout for DOCKER_COMMAND_ERROR" refusals

debug() {
	berth registry show -n default --debug -o none 2>debug.txt &&
	grep -q "DEBUG: Request URL: 'http://$REG/mgmt/v1/registries/default'" debug.txt &&
	grep -Eq 'DEBUG: Correlation id: [A-Z0-9]+' debug.txt &&
	grep -q "'Authorization': 'Bearer \*\*\*\*\*'" debug.txt &&
	! grep -qF "$(sed -n 's/.*"accessToken": "\([^"]*\)".*/\1/p' "$BERTH_CONFIG_DIR/config.json")" debug.txt
}
step "--debug: each request with its correlation id, the token redacted" debug

tables() {
	berth scope-map list -r default -o table | sed -n 1p | grep '^NAME *TYPE *CREATION DATE' >/dev/null &&
	berth credential show -n default -o table | sed -n 1p | grep '^USERNAME *PASSWORD *PASSWORD2' >/dev/null
}
step "-o table: az's columns, the name first" tables

echo "runbook scenario: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
