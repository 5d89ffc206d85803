#!/usr/bin/env bash
# The README's demo command, run as a visitor would and checked: `make demo`'s
# script (ci/demo.sh) for one second after its walk, which must show the
# payment booked, the refund settled, both notifications received and
# verified by the demo merchant's endpoint, and the demo shop's own manual
# capture over HTTP: Buy now, ship later, paid through the mock's control,
# the shop's authorized page, its orders page, its Ship and capture form,
# and the order captured there; and its subscription: Subscribe (paid
# through the mock's control, the card saved and shown on the shop's
# subscriptions page), next month charged off-session by the shop's server
# and booked, then cancelled (the card detached).  Prints "demo: N passed, N failed".
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
check "the shop's Buy now, ship later" '^11\. POST https://127\.0\.0\.1:[0-9]+/buy-later -> 303 to the gateway.s pay link for co_[a-p]{24}$'
check "the shop shows it authorized" '^12\. .*GET https://127\.0\.0\.1:[0-9]+/held\?order=co_[a-p]{24} -> Order authorized: held, not charged'
check "the shop's orders page: authorized" '^13\. GET https://127\.0\.0\.1:[0-9]+/orders -> co_[a-p]{24} po_[a-p]{24}_1 12\.00 USD AUTHORIZED 0\.00 USD'
check "the shop's Ship and capture" '^14\. .*POST https://127\.0\.0\.1:[0-9]+/orders/po_[a-p]{24}_1/capture -> 303 /orders$'
check "captured on the shop's orders page" '^15\. .*GET https://127\.0\.0\.1:[0-9]+/orders -> co_[a-p]{24} po_[a-p]{24}_1 12\.00 USD SUCCESS 12\.00 USD'
check "the shop's Subscribe" '^16\. POST https://127\.0\.0\.1:[0-9]+/subscribe -> 303 to the gateway.s pay link for co_[a-p]{24}$'
check "the card saved, shown on the shop's subscriptions page" '^17\. .*GET https://127\.0\.0\.1:[0-9]+/subscriptions -> sub_[a-p]{24} SUCCESS visa .+ 4242, expires 12/2030 active Charge next month'
check "next month charged off-session by the shop's server" '^18\. .*POST https://127\.0\.0\.1:[0-9]+/subscriptions/sub_[a-p]{24}/charge\?month=2 -> 303 /subscriptions$'
check "the renewal booked" '^19\. .*GET https://127\.0\.0\.1:[0-9]+/subscriptions -> sub_[a-p]{24} month 2 co_[a-p]{24}_m2 9\.90 USD SUCCESS charged without you'
check "a second click charges month 2 once" '^    the same form again \(a second click\): 303 /subscriptions, .*months charged: 1$'
check "the subscription cancelled, its card detached" '^20\. .*POST https://127\.0\.0\.1:[0-9]+/subscriptions/sub_[a-p]{24}/cancel -> 303 /subscriptions .* -> sub_[a-p]{24} SUCCESS visa .+ 4242, expires 12/2030 detached cancelled'
if [ "$failed" -ne 0 ]; then
    echo "---- the demo's output"
    cat "$log"
fi
echo "demo: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
