#!/usr/bin/env bash
# The README's demo command, run as a visitor would and checked: `make demo`'s
# script (ci/demo.sh) for one second after its walk, which must show the
# payment booked, the refund settled, and both notifications received and
# verified by the demo merchant's endpoint.  Prints "demo: N passed, N failed".
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
log=$(mktemp)
trap 'rm -f "$log"' EXIT

DEMO_SECONDS=1 timeout 300 bash "$top/ci/demo.sh" >"$log" 2>&1
rc=$?

passed=0 failed=0
check() {
    if grep -qE -- "$2" "$log"; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        echo "demo: FAILED: $1 (no line matching /$2/)"
    fi
}
if [ "$rc" -eq 0 ]; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "demo: FAILED: ci/demo.sh exited $rc"; fi
check "the shop is up" '^    https://127\.0\.0\.1:[0-9]+/$'
check "a payment registered" '^1\. POST /v1/payments -> .*"status":"EXECUTING"'
check "the payment booked" '^   GET /v1/payments/po_walk[0-9]+_1 -> .*"status":"SUCCESS"'
check "the refund settled" '^4\. .*"refunds":\[\{[^]]*"status":"SUCCEEDED"'
check "the seller's balance" '^5\. .*"available":"6\.00"'
check "checkout.succeeded notified and verified" '^   checkout\.succeeded co_walk[0-9]+ verified=true answer=204$'
check "a manual-capture payment authorized" '^8\. .*"status":"AUTHORIZED"'
check "and captured" '^10\. .*"status":"SUCCESS".*"captured":"10\.00"'
check "refund.succeeded notified and verified" '^   refund\.succeeded rf_[0-9a-f]+ verified=true answer=204$'
if [ "$failed" -ne 0 ]; then
    echo "---- the demo's output"
    cat "$log"
fi
echo "demo: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
