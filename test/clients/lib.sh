# Helpers shared by the client scenarios (sourced; needs WORK, REG and BERTH set).
pass=0 fail=0
# step NAME COMMAND…: runs the command in this shell (so it can set variables); output shown on failure
step() {
	local name=$1; shift
	if "$@" >"$WORK/step.out" 2>&1; then
		echo "ok   $name"; pass=$((pass + 1))
	else
		echo "FAIL $name"; tail -25 "$WORK/step.out" | sed 's/^/     /'; fail=$((fail + 1))
	fi
}
berth() { "$BERTH" "$@"; }
# has GREP_ARGS…: grep that reads all of its input (grep -q exits at the first match, and under
# pipefail the writer's SIGPIPE would then fail the step)
has() { grep "$@" >/dev/null; }
dlogin() { printf '%s' "$2" | docker login "$REG" -u "$1" --password-stdin; }
# refused COMMAND…: the command fails because the registry refused the credentials (401
# unauthorized), not for any other reason (a typo, no network, a missing tool)
refused() {
	local out
	if out=$("$@" 2>&1); then echo "succeeded, but should have been refused: $*"; return 1; fi
	grep -qi 'unauthorized' <<<"$out" || { echo "failed, but not as unauthorized: $*"; echo "$out"; return 1; }
}
# expect_refusal OUTPUT_PATTERN command…: the command fails and says why
expect_refusal() {
	local pattern=$1; shift
	local out
	if out=$("$@" 2>&1); then echo "succeeded, but should have been refused: $*"; return 1; fi
	echo "$out" | has -- "$pattern" || { echo "refused without '$pattern':"; echo "$out"; return 1; }
}
# push REPO:TAG: crane pushes layer.tar (made by the script) as a one-layer image
push() { crane append --insecure --oci-empty-base -f layer.tar -t "$REG/$1"; }
# insufficient_scope USER:PASSWORD REPO: the Docker token flow for a push to REPO gives a token
# without it, and the push is refused with 401 and error="insufficient_scope", naming the cause.
insufficient_scope() {
	local tok hdr
	tok=$(curl -fsS -u "$1" "http://$REG/oauth2/token?service=$REG&scope=repository:$2:pull,push" | sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p')
	[ -n "$tok" ] || { echo "no token"; return 1; }
	hdr=$(curl -s -D - -o body.json -X POST -H "Authorization: Bearer $tok" "http://$REG/v2/$2/blobs/uploads/")
	echo "$hdr" | has '^HTTP/1.1 401' && echo "$hdr" | has -i 'www-authenticate:.*error="insufficient_scope"' &&
		grep -q 'insufficient_scope' body.json || { echo "$hdr"; cat body.json; return 1; }
}
