#!/usr/bin/env bash
# Everything CI runs (`make test`, .ci/run): install dependencies, build,
# then the suites: unit, unit under ASan/UBSan, the mock PSP's own tests,
# a fuzz smoke run, end to end, the browser journeys, the docs against the code.  Every suite runs even when an earlier one
# failed (a suite whose build failed is skipped); the exit status is
# non-zero when anything failed.  The last line sums the suites:
# "N passed, N failed".
#
# Logs: build/test-logs/<step>.log.  FUZZ_SECONDS (default 10 here: a smoke
# run inside CI's 30 minutes; `make fuzz-smoke` runs 20) per harness.
# Budget on 2 cores: dependencies (once) a few minutes, builds ~3 min,
# unit + ASan ~1 min, fuzz 10 s per harness two at a time, e2e ~3 min,
# browser ~30 s.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
build=${BUILD:-build}
export BUILD=$build
logs=$build/test-logs
fuzz_seconds=${FUZZ_SECONDS:-10}
mkdir -p "$logs"

passed=0
failed=0
failures=()
declare -A broken=()     # build steps that failed

t0=$SECONDS

# Sums the Criterion syntheses in a log: "tested passing".
criterion_counts() {
    sed -n 's/.*Synthesis: Tested: \([0-9]*\) | Passing: \([0-9]*\) |.*/\1 \2/p' "$1" |
        awk '{ t += $1; p += $2 } END { print t + 0, p + 0 }'
}

# step NAME KIND CMD...: runs CMD, logs it, counts it.
#   KIND build: only a failure counts (1 failed)
#   KIND suite: Criterion syntheses, or a script's "NAME: N passed, N failed"
#               (fuzz, browser, deb, prom, docs), or
#               1 passed / 1 failed by exit status
step() {
    local name=$1 kind=$2 log rc=0 start t p f line
    shift 2
    log=$logs/$name.log
    start=$SECONDS
    echo
    echo "=== $name: $*"
    # pipefail: the command's status (tee's is 0)
    "$@" 2>&1 | tee "$log" || rc=$?
    p=0
    f=0
    if [ "$kind" = build ]; then
        [ "$rc" -eq 0 ] || { f=1; broken[$name]=1; }
    elif grep -q 'Synthesis: Tested:' "$log"; then
        read -r t p < <(criterion_counts "$log")
        f=$((t - p))
        # a runner that died, or failed outside any test
        if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
    elif line=$(grep -E '^(fuzz|browser|deb|prom|docs|demo|logscan): [0-9]+ passed, [0-9]+ failed' "$log" | tail -1) && [ -n "$line" ]; then
        p=$(sed -E 's/^[a-z]+: ([0-9]+) passed.*/\1/' <<<"$line")
        f=$(sed -E 's/.* ([0-9]+) failed.*/\1/' <<<"$line")
        if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
    elif [ "$rc" -eq 0 ]; then
        p=1
    else
        f=1
    fi
    passed=$((passed + p))
    failed=$((failed + f))
    if [ "$rc" -ne 0 ]; then
        failures+=("$name")
    fi
    echo "=== $name: exit $rc; $p passed, $f failed; $((SECONDS - start)) s"
    return 0
}

# skip NAME BUILD...: true (and says so) when a build it needs failed.
skip_if_broken() {
    local name=$1 b
    shift
    for b in "$@"; do
        if [ -n "${broken[$b]:-}" ]; then
            echo
            echo "=== $name: SKIPPED: $b failed"
            return 0
        fi
    done
    return 1
}

# --- dependencies --------------------------------------------------------------
step deps build bash ci/install-deps.sh --core
if [ -n "${broken[deps]:-}" ]; then
    echo "dependencies could not be installed: nothing else can run" >&2
    echo "$passed passed, $failed failed"
    exit 1
fi
# The browser suite's own (Debian's chromium, nodejs, npm; playwright-core):
# when they cannot be installed, this step fails, the other suites still run
# and so does the browser suite, which then fails too.  Never a skip.
step deps-browser build bash ci/install-deps.sh --browser

# The docs against the code (ci/doc-check.sh, a second): every directive has
# its reference entry, every SQL function the code calls its entry in
# doc/CONTRACTS.md, README.md stays a front door, no link leaves the tree.
step docs suite bash ci/doc-check.sh

# The SQL's layout (ci/sql-check.sh, about 25 s on a PostgreSQL of its own):
# sql/schema.sql is a fresh migrate's, the baseline makes what the history
# it folds made, databases of the earlier layouts upgrade to it, one file
# per function with its triggers, no function in a migration, none
# executable by PUBLIC.
step sql-layout suite bash ci/sql-check.sh

# --- builds ----------------------------------------------------------------------
step build-core build make -j2 core
step build-unit build make -j2 "$build/unit_tests" "$build/unit_tests-asan"
step build-mock build make -j2 mock mock-asan
step build-module build make module
step build-e2e build make -j2 "$build/e2e_tests"
step build-reconcile build make -j2 reconcile
step build-secrets build make -j2 secrets
# the rest of what ci/e2e.sh checks for before it starts (the Makefile's
# E2E_DEPS: payments-events-verify, slow_dns.so, the receiver's packages),
# so that a tool added to the suite is built here too
step build-e2e-deps build make -j2 e2e-deps

mapfile -t fuzz_src < <(ls tests/fuzz/fuzz_*.c 2>/dev/null || true)
fuzz_bin=()
for s in "${fuzz_src[@]}"; do
    n=${s##*/}
    fuzz_bin+=("$build/fuzz/${n%.c}")
done
if [ ${#fuzz_bin[@]} -gt 0 ]; then
    # -k: one harness that does not build leaves the others to run
    step build-fuzz build make -k -j2 "${fuzz_bin[@]}"
fi

# --- suites -----------------------------------------------------------------------
# which file calls which: no cycle, the glue's map true (CONTRIBUTING.md)
skip_if_broken callmap build-core build-module ||
    step callmap suite bash ci/callmap-check.sh
skip_if_broken unit build-core build-unit ||
    step unit suite make unit
skip_if_broken unit-asan build-core build-unit ||
    step unit-asan suite make unit-asan

skip_if_broken mock-test build-mock ||
    step mock-test suite make mock-test

# the e2e suite's notification receiver on its own (standardwebhooks signs,
# it verifies; every answer mode), a few seconds
step notify-receiver suite make notify-receiver-test

if [ ${#fuzz_bin[@]} -eq 0 ]; then
    echo
    echo "=== fuzz-smoke: WARNING: no harness in tests/fuzz/: nothing fuzzed"
else
    step fuzz-smoke suite bash ci/fuzz.sh "$fuzz_seconds" "${fuzz_bin[@]}"
fi

skip_if_broken e2e build-module build-mock build-e2e build-reconcile build-secrets build-e2e-deps ||
    step e2e suite bash ci/e2e.sh

# The log scan against planted logs (a token in a debug line of the
# module's is found; nginx's own debug lines are not searched), then the
# registration, webhook, money and notification suites again with every
# gateway at `error_log ... debug` and the scan after them (~1 min).
step log-scan-test suite bash ci/log-scan-test.sh
skip_if_broken e2e-debug build-module build-mock build-e2e build-reconcile build-secrets build-e2e-deps ||
    step e2e-debug suite make e2e-debug

# The Debian package (ci/deb-test.sh): make deb, lintian, apt-get install,
# Debian's nginx on the packaged example with one payment, purge.
skip_if_broken deb build-module build-mock ||
    step deb suite bash ci/deb-test.sh

# Debian's Chromium, headless, through the demo shop, the gateway, the mock
# PSP's hosted page and back (tests/browser/run.sh, ~30 s): pay, decline,
# and a late webhook turning the pending page into the shop's thank-you
# page.  Its "browser: N passed, N failed" is counted; CI=true or not, it
# never skips (a missing Chromium is a failure).
# Prometheus: the alerting rules and their unit tests (promtool); /metrics
# itself is checked by promtool at the end of the e2e suite.
step prom suite bash ci/prom-test.sh rules

skip_if_broken browser build-module build-mock ||
    step browser suite bash tests/browser/run.sh

# The README's demo command as a visitor runs it (ci/demo-check.sh, ~20 s):
# its walk pays, refunds and shows both notifications verified.
skip_if_broken demo build-module build-mock build-secrets ||
    step demo suite bash ci/demo-check.sh

# --- summary ----------------------------------------------------------------------
echo
echo "=== total $((SECONDS - t0)) s"
if [ ${#failures[@]} -gt 0 ]; then
    echo "=== failed: ${failures[*]}"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ ${#failures[@]} -eq 0 ]
