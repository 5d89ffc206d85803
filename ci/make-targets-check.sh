#!/usr/bin/env bash
# Builds the documented make targets as a fresh clone would: the committed
# HEAD cloned into a temporary directory (no build/, no node_modules), and
# each target built there in a build directory of its own, so that a
# prerequisite one target lacks is never supplied by another.
#
#   ci/make-targets-check.sh              the default list below
#   ci/make-targets-check.sh TARGET...    those targets
#
# The targets that run a long suite are not run: for `e2e` and `chaos` it
# builds `e2e-deps` (their prerequisites) and runs ci/e2e.sh's own check of
# what the suite needs (E2E_PREFLIGHT=1); `test`, `bench*`, `deb`, `demo`
# and `browser` build what they need themselves (ci/test.sh, bench/*.sh,
# ci/demo.sh, tests/browser/run.sh) or check it (packaging/build-deb.sh).
# Several minutes on two cores: not a step of ci/test.sh.  Prints
# "make-targets: N passed, N failed" last.  TMPDIR as usual; KEEP=1 keeps
# the clone.
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(all core reconcile secrets module mock mock-asan demo-shop
             unit mock-test doc-check build/fuzz/fuzz_dialect_webhooks
             e2e-deps)
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/ngx-payments-targets.XXXXXX")
# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup() {
    if [ "${KEEP:-0}" = 1 ]; then
        echo "make-targets: kept $work"
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT

head=$(git -C "$top" rev-parse HEAD) || exit 1
if ! git clone -q "$top" "$work/clone" || ! git -C "$work/clone" checkout -q "$head"; then
    echo "make-targets: git clone failed" >&2
    exit 1
fi
cd "$work/clone" || exit 1
echo "make-targets: $(git log --oneline -1) in $work/clone"

passed=0
failed=0
for t in "${targets[@]}"; do
    b=build-$(printf '%s' "$t" | tr '/' '_')
    log=$work/$b.log
    start=$SECONDS
    # a file target under build/ is asked for under this target's BUILD
    if make -j2 BUILD="$b" "${t/#build\//$b/}" >"$log" 2>&1 &&
        { [ "$t" != e2e-deps ] || BUILD=$b E2E_PREFLIGHT=1 bash ci/e2e.sh >>"$log" 2>&1; }
    then
        echo "ok    make $t ($((SECONDS - start)) s)"
        passed=$((passed + 1))
    else
        echo "FAIL  make $t ($((SECONDS - start)) s):"
        tail -n 20 "$log" | sed 's/^/     | /'
        failed=$((failed + 1))
    fi
done

echo "make-targets: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
