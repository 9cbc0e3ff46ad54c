#!/usr/bin/env bash
# Issue 20's pipeline scenario with real clients, against a berth of its own that trusts a test
# OpenID Connect issuer (test/clients/oidc-issuer, started here on loopback): a GitHub-Actions-
# shaped token for repo:acme/app:ref:refs/heads/main pushes with docker login + crane, and through
# berth auth login --federated-token + berth login; the dev branch is refused with its subject
# named, in docker's output and in the login event; a Kubernetes service-account token with the
# credential's audience pulls with skopeo and may not push; another audience is refused.
# Needs BERTH (the berth binary), go (to build the issuer), and docker crane skopeo curl on PATH.
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${BERTH:?set BERTH to the berth binary}"
ISSUER_DIR=$(mktemp -d)
(cd "$HERE/../.." && go build -o "$ISSUER_DIR/oidc-issuer" ./test/clients/oidc-issuer) || { echo "building the issuer failed"; exit 1; }
"$ISSUER_DIR/oidc-issuer" -listen 127.0.0.1:0 >"$ISSUER_DIR/log" 2>&1 &
ISSUER_PID=$!
ISSUER=
for _ in $(seq 100); do
	ISSUER=$(sed -n 's/^issuer //p' "$ISSUER_DIR/log")
	[ -n "$ISSUER" ] && break
	sleep 0.1
done
[ -n "$ISSUER" ] || { echo "the issuer did not start"; cat "$ISSUER_DIR/log"; kill "$ISSUER_PID"; exit 1; }
source "$HERE/own-server.sh"
own_server BERTH_FEDERATION_ISSUERS="$ISSUER" BERTH_FEDERATION_ALLOW_HTTP=true BERTH_OUTBOUND_ALLOWED_NETWORKS=127.0.0.0/8
trap '[ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null; kill "$ISSUER_PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK" "$ISSUER_DIR"' EXIT
source "$HERE/lib.sh"
head -c 50000 /dev/urandom >rand.bin && tar -cf layer.tar rand.bin
token() { curl -fsS "$ISSUER/token?sub=$1&aud=${2:-api://BerthTokenExchange}"; }

setup() {
	printf '%s' "$OWNER_PASSWORD" | berth auth login --server "http://$REG" -u owner --password-stdin -o none &&
	PUSHER=$(berth sp create -n pipeline --query appId -o tsv) &&
	berth role assignment create --assignee "$PUSHER" --role AcrPush --scope /registries/default -o none &&
	berth sp federated-credential create --id "$PUSHER" -n main --issuer "$ISSUER" --subject repo:acme/app:ref:refs/heads/main -o none &&
	PULLER=$(berth sp create -n cluster-puller --query appId -o tsv) &&
	berth role assignment create --assignee "$PULLER" --role AcrPull --scope /registries/default -o none &&
	berth sp federated-credential create --id "$PULLER" -n prod-puller --issuer "$ISSUER" --subject system:serviceaccount:prod:puller \
		--audiences https://berth.example/kubernetes -o none &&
	[ "$(berth sp federated-credential list --id "$PUSHER" --query '[0].subject' -o tsv)" = repo:acme/app:ref:refs/heads/main ]
}
step "owner creates two service principals with federated credentials (GitHub main branch; a Kubernetes service account)" setup

docker_crane() {
	token repo:acme/app:ref:refs/heads/main | docker login "$REG" -u "$PUSHER" --password-stdin &&
	push acme/app:v1 && crane manifest --insecure "$REG/acme/app:v1" >/dev/null
}
step "main branch: docker login -u APPID with the token as password, then crane pushes (no secret anywhere)" docker_crane

cli_login() {
	BERTH_CONFIG_DIR=$WORK/pipeline-cli berth auth login --server "http://$REG" --service-principal -u "$PUSHER" \
		--federated-token "$(token repo:acme/app:ref:refs/heads/main)" -o none &&
	docker logout "$REG" >/dev/null &&
	BERTH_CONFIG_DIR=$WORK/pipeline-cli berth login -n default >/dev/null &&
	push acme/app:v2 &&
	[ "$(BERTH_CONFIG_DIR=$WORK/pipeline-cli berth auth show --query user.name -o tsv)" = "$PUSHER" ]
}
step "berth auth login --service-principal --federated-token, berth login -n default, then crane pushes" cli_login

dev_refused() {
	docker logout "$REG" >/dev/null
	local out
	if out=$(token repo:acme/app:ref:refs/heads/dev | docker login "$REG" -u "$PUSHER" --password-stdin 2>&1); then
		echo "the dev branch signed in"; return 1
	fi
	has -F 'subject repo:acme/app:ref:refs/heads/dev does not match the federated credential "main"' <<<"$out" || { echo "$out"; return 1; }
	for _ in $(seq 50); do
		SUBJECT=$(berth logs login-events --identity "$PUSHER" --reason federated_subject_mismatch --query '[0].subject' -o tsv)
		[ -n "$SUBJECT" ] && break
		sleep 0.1
	done
	[ "$SUBJECT" = repo:acme/app:ref:refs/heads/dev ] &&
	[ "$(berth logs login-events --identity "$PUSHER" --reason federated_subject_mismatch --query '[0].issuer' -o tsv)" = "$ISSUER" ] &&
	berth explain -n default --identity "$PUSHER" --repository acme/app --action push --subject repo:acme/app:ref:refs/heads/dev | has 'does not match'
}
step "dev branch: docker login refused naming the subject; the login event carries issuer and subject; explain says why" dev_refused

kubernetes() {
	local tok out
	tok=$(token system:serviceaccount:prod:puller https://berth.example/kubernetes) &&
	skopeo inspect --tls-verify=false --creds "$PULLER:$tok" "docker://$REG/acme/app:v1" >/dev/null || return 1
	if out=$(skopeo copy --src-tls-verify=false --dest-tls-verify=false --src-creds "$PULLER:$tok" --dest-creds "$PULLER:$tok" \
		"docker://$REG/acme/app:v1" "docker://$REG/acme/app:pushed-by-puller" 2>&1); then
		echo "the AcrPull principal pushed"; return 1
	fi
	has -Ei 'denied|unauthorized' <<<"$out" || { echo "$out"; return 1; }
	tok=$(token system:serviceaccount:prod:puller api://BerthTokenExchange)
	if out=$(skopeo inspect --tls-verify=false --creds "$PULLER:$tok" "docker://$REG/acme/app:v1" 2>&1); then
		echo "another audience pulled"; return 1
	fi
	has -i 'unauthorized' <<<"$out" || { echo "$out"; return 1; }
}
step "Kubernetes service-account token with the credential's audience pulls (skopeo), may not push; another audience is refused" kubernetes

echo "federation scenario: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
