#!/usr/bin/env bash
# Mutation testing of the access-control and durability packages (internal/policy, token,
# oauth, authn, directory, distribution, blob, blob/fsblob) with berth's own driver,
# test/mutate: each mutant is one small change (a negated condition, a dropped guard, a deleted
# call …) tested through `go test -overlay`, so the tree is never modified. Survivors must be
# listed in test/mutate/survivors.txt (equivalent, with why; or open); the nine hand mutants of
# issue 14 must be killed.
#
#   bash scripts/mutate.sh                 # every mutant (about an hour on 2 cores)
#   bash scripts/mutate.sh --sample 48     # a fixed sample, as CI runs it (a few minutes)
#   bash scripts/mutate.sh internal/policy # one package
#   bash scripts/mutate.sh -save run.json  # keep every mutant's result …
#   bash scripts/mutate.sh -rescore run.json  # … and judge it again after survivors.txt changed
# Flags are test/mutate's: -sample N, -workers N, -out FILE.md, -record FILE, -save FILE,
# -rescore FILE, -list, -hand=false.
set -euo pipefail
cd "$(dirname "$0")/.."
exec go run ./test/mutate "$@"
