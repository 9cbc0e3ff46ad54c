#!/usr/bin/env bash
# Issue 19's content scenario with real clients, against a berth of its own: crane, oras and
# skopeo push; berth repository and berth manifest list, show, untag and delete what they pushed
# (the catalog forgets an emptied repository); a write-disabled tag refuses crane's push with
# ACR's message, a delete-disabled manifest survives crane delete and berth purge; with soft
# delete on, what crane deletes is restored and pulled again; a repository token reads metadata
# within its scope map only.
# Needs BERTH (the berth binary), and docker crane skopeo oras curl on PATH.
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${BERTH:?set BERTH to the berth binary}"
source "$HERE/own-server.sh"
own_server BERTH_OUTBOUND_ALLOWED_NETWORKS=127.0.0.0/8
source "$HERE/lib.sh"
head -c 50000 /dev/urandom >rand.bin && tar -cf layer.tar rand.bin
head -c 50000 /dev/urandom >rand2.bin && tar -cf layer2.tar rand2.bin

step "owner signs in; docker logs in as the admin user" bash -c "
	printf '%s' '$OWNER_PASSWORD' | '$BERTH' auth login --server http://$REG -u owner --password-stdin -o none &&
	'$BERTH' registry update -n default --admin-enabled -o none --only-show-errors &&
	'$BERTH' credential show -n default --query 'passwords[0].value' -o tsv | docker login $REG -u default --password-stdin"

pushes() {
	push team/app:v1 && push team/app:v2 &&
	skopeo copy --src-tls-verify=false --dest-tls-verify=false "docker://$REG/team/app:v1" "docker://$REG/team/copy:v1" &&
	echo hello >hello.txt && oras push --plain-http "$REG/team/notes:v1" hello.txt:text/plain &&
	[ "$(berth repository list -n default -o tsv | tr '\n' ' ')" = "team/app team/copy team/notes " ] &&
	[ "$(berth repository show-tags -n default --repository team/app -o tsv | tr '\n' ' ')" = "v1 v2 " ] &&
	[ "$(berth repository show -n default --repository team/app --query tagCount -o tsv)" = 2 ] &&
	[ "$(berth manifest show-metadata -r default -n team/notes:v1 --query 'tags[0]' -o tsv)" = v1 ] &&
	[ "$(berth manifest show-metadata -r default -n team/app:v1 --query digest -o tsv)" = "$(crane digest --insecure "$REG/team/app:v1")" ]
}
step "crane, skopeo and oras push; berth repository list, show-tags, show and manifest show-metadata see it" pushes

write_lock() {
	berth repository update -n default --image team/app:v1 --write-enabled false -o none &&
	out=$(crane append --insecure --oci-empty-base -f layer2.tar -t "$REG/team/app:v1" 2>&1); rc=$?
	[ $rc -ne 0 ] && grep -q 'REGISTRY_DISALLOWED_OPERATION' <<<"$out" &&
	grep -q 'The operation is disallowed on this registry, repository or image' <<<"$out" &&
	grep -q 'tag v1 of repository team/app is write-disabled' <<<"$out" &&
	push team/app:v3 &&
	berth explain -n default --identity owner --repository team/app:v1 --action push | grep 'write-disabled' >/dev/null
}
step "a write-disabled tag refuses crane's push with ACR's message; other tags move; explain says why" write_lock

delete_lock() {
	local d
	d=$(crane digest --insecure "$REG/team/app:v2") &&
	berth repository update -n default --image "team/app@$d" --delete-enabled false -o none &&
	expect_refusal 'REGISTRY_DISALLOWED_OPERATION' crane delete --insecure "$REG/team/app@$d" &&
	berth purge -n default --filter 'team/app:.*' --ago 0d --untagged --only-show-errors -o none &&
	crane manifest --insecure "$REG/team/app@$d" >/dev/null &&
	[ "$(berth manifest list-metadata -r default -n team/app --query "[?digest=='$d'] | length(@)" -o tsv)" = 1 ]
}
step "a delete-disabled manifest survives crane delete and berth purge" delete_lock

soft_delete() {
	local d
	berth config soft-delete update -r default --status enabled --days 7 -o none &&
	push team/soft:v1 && d=$(crane digest --insecure "$REG/team/soft:v1") &&
	crane delete --insecure "$REG/team/soft@$d" &&
	expect_refusal 'MANIFEST_UNKNOWN\|not found\|404' crane manifest --insecure "$REG/team/soft:v1" &&
	[ "$(berth manifest list-deleted -r default -n team/soft --query '[0].digest' -o tsv)" = "$d" ] &&
	berth manifest restore -r default -n team/soft:v1 -o none &&
	skopeo copy --src-tls-verify=false "docker://$REG/team/soft:v1" oci:soft:v1 &&
	[ "$(crane digest --insecure "$REG/team/soft:v1")" = "$d" ] &&
	berth config soft-delete update -r default --status disabled -o none
}
step "soft delete: crane delete, list-deleted, restore, skopeo pulls it again" soft_delete

import_self() {
	local pw
	pw=$(berth credential show -n default --query 'passwords[0].value' -o tsv) &&
	[ "$(berth import -n default --source "$REG/team/app:v1" --image team/imported:v1 --plain-http -u default -p "$pw" --query status -o tsv)" = Succeeded ] &&
	[ "$(crane digest --insecure "$REG/team/imported:v1")" = "$(crane digest --insecure "$REG/team/app:v1")" ] &&
	expect_refusal 'exists' berth import -n default --source "$REG/team/app:v1" --image team/imported:v1 --plain-http -u default -p "$pw"
}
step "berth import copies an image from a registry (here itself, through its token flow); an existing tag needs --force" import_self

untag_delete() {
	berth repository untag -n default --image team/copy:v1 &&
	expect_refusal 'MANIFEST_UNKNOWN\|not found\|404' crane manifest --insecure "$REG/team/copy:v1" &&
	berth manifest delete -r default -n "team/copy@$(berth manifest list-metadata -r default -n team/copy --query '[0].digest' -o tsv)" --yes &&
	! berth repository list -n default -o tsv | grep -x team/copy >/dev/null &&
	! crane catalog --insecure "$REG" | grep -x team/copy >/dev/null &&
	berth repository delete -n default --repository team/notes --yes &&
	expect_refusal 'NAME_UNKNOWN\|not found\|404' oras pull --plain-http "$REG/team/notes:v1"
}
step "untag, manifest delete, repository delete: the emptied repositories leave the catalog (crane catalog too)" untag_delete

token_scope() {
	local pw
	pw=$(berth token create -n meta-reader -r default --repository team/app content/read metadata/read \
		--query 'credentials.passwords[0].value' -o tsv --only-show-errors) &&
	[ "$(berth repository show-tags -n "http://$REG" -u meta-reader -p "$pw" --repository team/app -o tsv | sed -n 1p)" = v1 ] &&
	expect_refusal 'DENIED' berth repository show -n "http://$REG" -u meta-reader -p "$pw" --repository team/other &&
	expect_refusal 'DENIED' berth repository untag -n "http://$REG" -u meta-reader -p "$pw" --image team/app:v3
}
step "a repository token reads metadata in its scope map only, and cannot untag" token_scope

echo "content scenario: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
