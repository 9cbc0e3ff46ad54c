#!/usr/bin/env bash
# Checks the portal's vendored front-end code against npm: fetches each package at its pinned
# version and fails if the copy in internal/portal/static differs. With --update, writes the
# fetched files instead (then update internal/portal/VENDORED.md and the script tags).
set -euo pipefail
cd "$(dirname "$0")/.."
HTMX_VERSION=2.0.11
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "htmx.org@$HTMX_VERSION" >/dev/null && tar xzf "htmx.org-$HTMX_VERSION.tgz")
static=internal/portal/static
if [ "${1:-}" = --update ]; then
	cp "$tmp/package/dist/htmx.min.js" "$static/htmx-$HTMX_VERSION.min.js"
	cp "$tmp/package/LICENSE" "$static/htmx-$HTMX_VERSION.LICENSE"
	echo "updated htmx $HTMX_VERSION"
	exit 0
fi
cmp "$tmp/package/dist/htmx.min.js" "$static/htmx-$HTMX_VERSION.min.js"
cmp "$tmp/package/LICENSE" "$static/htmx-$HTMX_VERSION.LICENSE"
echo "htmx $HTMX_VERSION: the vendored copy is npm's"
