#!/usr/bin/env bash
# `make demo`: on a fresh Debian machine, installs what is missing, builds the
# module, the mock PSP and the demo shop, starts PostgreSQL, the mock PSP,
# nginx with the module and the demo shop on loopback ports, and prints the
# shop's address (the whole journey in a browser: shop -> gateway -> the mock
# PSP's hosted page -> back to the shop; the shop's manual capture from its
# orders page; its subscription, charged off-session from its subscriptions
# page) and a curl that creates a payment.
# The demo merchant has a notification endpoint: a receiver that verifies
# each signed notification (tests/notify_receiver), whose deliveries the
# demo shows.
# Runs until Ctrl-C (or DEMO_SECONDS), then stops it all.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

bash ci/install-deps.sh --core     # not the browser suite's chromium
make -s module mock demo-shop secrets

run=$(mktemp -d /tmp/ngx-payments-demo.XXXXXX)
chmod 755 "$run"
stop() {
    bash ci/receiver.sh stop "$run" || true
    bash ci/shop.sh stop "$run" || true
    bash ci/services.sh stop "$run" || true
    # the database, keys and logs of this run go with it (KEEP_RUN=1 keeps
    # them to read afterwards)
    if [ "${KEEP_RUN:-0}" = 1 ]; then
        echo "demo: run directory kept: $run" >&2
    else
        rm -rf "$run"
    fi
}
trap stop EXIT
trap 'exit 130' INT TERM

# Stable ports when free, so a bookmarked shop address works next time:
# the shop 8443, the gateway 9443, the mock PSP 9090 (ci/services.sh).
bash ci/services.sh start "$run" --lease 30s --public-origin self --stable-ports
# shellcheck disable=SC1091
. "$run/env"
shop=$(SHOP_PORT=8443 bash ci/shop.sh start "$run")
case $shop in
    *:8443) ;;
    *) echo "demo: port 8443 is taken: the shop is on $shop this time" ;;
esac

# The demo merchant may send its shoppers back to the shop, and its sellers
# have pay-out destinations at the mock PSP (doc/MONEY.md's pay-out works)
for s in seller_42 seller_77; do
    bin/payments-merchant --db "$PAY_TEST_PG" add-seller --id "$PAY_TEST_MERCHANT_ID" \
        --seller "$s" --psp "$PAY_TEST_PSP" --destination acct_1MockSeller \
        >>"$run/logs/services.log" 2>&1
done
bin/payments-merchant --db "$PAY_TEST_PG" add-origin --id "$PAY_TEST_MERCHANT_ID" \
    --origin "$shop" >>"$run/logs/services.log" 2>&1

# Notifications: the demo merchant's endpoint is a receiver on loopback that
# checks each delivery's signature with the endpoint's secret.
bash ci/receiver.sh start "$run" >>"$run/logs/services.log"
# shellcheck disable=SC1091
. "$run/receiver.env"
endpoint_out=$(PAYMENTS_KEY_FILE=$PAY_TEST_ENCRYPTION_KEY bin/payments-merchant \
    --db "$PAY_TEST_PG" add-endpoint --id "$PAY_TEST_MERCHANT_ID" \
    --url "$PAY_TEST_RECEIVER/hooks/demo" --allow-loopback 2>&1) \
    || { echo "demo: add-endpoint failed: $endpoint_out" >&2; exit 1; }
endpoint_secret=$(grep -o 'whsec_[A-Za-z0-9+/=]*' <<<"$endpoint_out" | head -n 1)
curl -sf -o /dev/null -X POST "$PAY_TEST_RECEIVER_CONTROL/_control/secrets" \
    -d "{\"path\":\"/hooks/demo\",\"secrets\":[\"$endpoint_secret\"]}" \
    || { echo "demo: the receiver did not take the endpoint's secret" >&2; exit 1; }

id="demo$(date +%s)"
body=$(cat <<JSON
{"checkout_id": "co_$id",
 "buyer_info": {"email": "ann@example.com"},
 "payment_orders": [
   {"payment_order_id": "po_${id}_1", "seller_account": "seller_42", "amount": "10.00", "currency": "USD"},
   {"payment_order_id": "po_${id}_2", "seller_account": "seller_77", "amount": "5.00", "currency": "USD"}],
 "success_url": "$shop/thanks",
 "cancel_url": "$shop/cart",
 "psp": "$PAY_TEST_PSP"}
JSON
)

cat <<TXT

ngx_payments demo is up (run directory $run).

In a browser on this machine, open the demo shop (accept the self-signed
certificate, for the shop and then for the gateway):

    $shop/

Buy -> the gateway -> the mock PSP's hosted page -> Pay (or Decline) -> the
mock sends its signed webhook, the gateway books the money -> back to the
shop's thank-you (or cart) page.

Buy now, ship later (a manual capture) -> the same, but Pay only authorizes:
back at the shop the order is held, not charged.  The shop's orders page,

    $shop/orders

has Ship and capture (the shop's server captures it; the PSP's webhook
books it and the page shows it captured) and Release (a void).

Subscribe (a monthly plan) -> the same hosted page, where paying the first
month also saves the card there (the mock's generic PSP, which tells the
card's brand and last four).  The shop's subscriptions page,

    $shop/subscriptions

shows the saved card as the gateway lists it, Charge next month (the shop's
server charges the saved card off-session: no browser, no PSP page; the
PSP's webhook books it) and Cancel subscription (the card detached).

  gateway   $PAY_TEST_GW   (self-signed certificate: $PAY_TEST_CA)
  mock PSP  $PAY_TEST_MOCK
  database  $PAY_TEST_PG
  merchant  $PAY_TEST_MERCHANT_ID, API key $PAY_TEST_MERCHANT_KEY

Create a payment (run it twice: the second answer is the stored one, replayed):

curl -s --cacert $PAY_TEST_CA -i -X POST $PAY_TEST_GW/v1/payments \\
  -H 'Authorization: Bearer $PAY_TEST_MERCHANT_KEY' \\
  -H 'Idempotency-Key: "key-$id"' \\
  -H 'Content-Type: application/json' \\
  -d '$(echo "$body" | tr -d '\n')'

Then open the answer's pay_url in a browser (accept the certificate): it sends
you to the mock PSP's hosted page, and Pay (or Decline) back to the shop's
thank-you (or cart) page.  Look the checkout up with
  curl -s --cacert $PAY_TEST_CA -H 'Authorization: Bearer $PAY_TEST_MERCHANT_KEY' $PAY_TEST_GW/v1/checkouts/co_$id

Notifications (doc/NOTIFICATIONS.md) go to the demo's receiver, which
verifies each signature; what it received:
  curl -s $PAY_TEST_RECEIVER_CONTROL/_control/deliveries

bin/payments-merchant works on the demo's database with
  export PAYMENTS_DB='$PAY_TEST_PG' PAYMENTS_KEY_FILE='$PAY_TEST_ENCRYPTION_KEY'
An endpoint of your own on this machine (it prints the signing secret):
  bin/payments-merchant add-endpoint --id $PAY_TEST_MERCHANT_ID --allow-loopback \\
    --url https://127.0.0.1:PORT/hooks
The demo gateway trusts only its own certificate for endpoints (payments_notify
ca= in $run/nginx.conf): serve your endpoint with $run/conf/tls.crt and
$run/conf/tls.key (made for 127.0.0.1 and localhost).
Logs: $run/logs/.  Ctrl-C stops everything and removes them (KEEP_RUN=1
keeps them).
TXT

# A walk through the money's life, printed as it happens (DEMO_WALK=0 skips
# it): a payment, paid on the mock's hosted page by its control API, then a
# partial refund that the mock's signed webhook settles, and the order with
# its refund and the seller's balance; a manual capture by the API; then the
# demo shop's own: Buy now, ship later, paid, and captured from its orders
# page; and its subscription: Subscribe (the card saved while paying),
# next month charged off-session by the shop's server, then cancelled.
walk() {
    local gw="$PAY_TEST_GW" ca="$PAY_TEST_CA" key="$PAY_TEST_MERCHANT_KEY"
    local wid="walk$(date +%s)" answer token i order
    api() { curl -s --cacert "$ca" -H "Authorization: Bearer $key" "$@"; }
    echo
    echo "== A walk through a payment's life (DEMO_WALK=0 skips it)"
    answer=$(api -X POST "$gw/v1/payments" -H "Idempotency-Key: $wid" \
        -H 'Content-Type: application/json' -d "{\"checkout_id\": \"co_$wid\",
 \"payment_orders\": [{\"payment_order_id\": \"po_${wid}_1\", \"seller_account\": \"seller_42\", \"amount\": \"10.00\", \"currency\": \"USD\"}],
 \"success_url\": \"$shop/thanks\", \"cancel_url\": \"$shop/cart\",
 \"psp\": \"$PAY_TEST_PSP\"}")
    echo "1. POST /v1/payments -> $answer"
    token=$(printf '%s' "$answer" | sed -n 's/.*"psp_token":"\([^"]*\)".*/\1/p')
    [ -n "$token" ] || { echo "walk: no session"; return 0; }
    curl -s -X POST "$PAY_TEST_MOCK/_control/sessions/$token/pay" >/dev/null
    echo "2. the shopper pays on the PSP's page; its signed webhook books it"
    for i in $(seq 50); do
        order=$(api "$gw/v1/payments/po_${wid}_1")
        case $order in *'"status":"SUCCESS"'*) break ;; esac
        sleep 0.2
    done
    echo "   GET /v1/payments/po_${wid}_1 -> $order"
    answer=$(api -X POST "$gw/v1/payments/po_${wid}_1/refunds" \
        -H "Idempotency-Key: r-$wid" -H 'Content-Type: application/json' \
        -d '{"amount": "4.00", "reason": "one item returned"}')
    echo "3. POST /v1/payments/po_${wid}_1/refunds {\"amount\": \"4.00\"} -> $answer"
    for i in $(seq 50); do
        order=$(api "$gw/v1/payments/po_${wid}_1")
        case $order in *'"status":"SUCCEEDED"'*) break ;; esac
        sleep 0.2
    done
    echo "4. the PSP's refund webhook settles it: GET /v1/payments/po_${wid}_1 -> $order"
    echo "5. GET /v1/sellers/seller_42/balance -> $(api "$gw/v1/sellers/seller_42/balance")"
    for i in $(seq 50); do
        case $(curl -s "$PAY_TEST_RECEIVER_CONTROL/_control/deliveries?path=/hooks/demo") in
            *refund.succeeded*) break ;;
        esac
        sleep 0.2
    done
    echo "6. the merchant's endpoint received, signed and verified:"
    curl -s "$PAY_TEST_RECEIVER_CONTROL/_control/deliveries?path=/hooks/demo" |
        node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{
            for (const d of JSON.parse(s).deliveries)
                console.log("   " + d.type + " " + (d.object_id || d.checkout_id) +
                            " verified=" + d.verified + " answer=" + d.answer);})'
    # authorize now, capture later (doc/API.md, "Manual capture")
    local mid="m$wid"
    answer=$(api -X POST "$gw/v1/payments" -H "Idempotency-Key: $mid" \
        -H 'Content-Type: application/json' -d "{\"checkout_id\": \"co_$mid\",
 \"payment_orders\": [{\"payment_order_id\": \"po_${mid}_1\", \"seller_account\": \"seller_42\", \"amount\": \"10.00\", \"currency\": \"USD\"}],
 \"success_url\": \"$shop/thanks\", \"cancel_url\": \"$shop/cart\",
 \"psp\": \"$PAY_TEST_PSP\", \"capture\": \"manual\"}")
    echo "7. POST /v1/payments {\"capture\": \"manual\", ...} -> $answer"
    token=$(printf '%s' "$answer" | sed -n 's/.*"psp_token":"\([^"]*\)".*/\1/p')
    [ -n "$token" ] || { echo "walk: no session"; return 0; }
    curl -s -X POST "$PAY_TEST_MOCK/_control/sessions/$token/pay" >/dev/null
    for i in $(seq 50); do
        order=$(api "$gw/v1/payments/po_${mid}_1")
        case $order in *'"status":"AUTHORIZED"'*) break ;; esac
        sleep 0.2
    done
    echo "8. the shopper pays: the PSP holds the money, nothing is booked: GET /v1/payments/po_${mid}_1 -> $order"
    echo "   GET /v1/sellers/seller_42/balance -> $(api "$gw/v1/sellers/seller_42/balance")"
    answer=$(api -X POST "$gw/v1/payments/po_${mid}_1/capture" \
        -H "Idempotency-Key: c-$mid" -H 'Content-Type: application/json' \
        -d '{"amount": "10.00"}')
    echo "9. the shop ships: POST /v1/payments/po_${mid}_1/capture {\"amount\": \"10.00\"} -> $answer"
    for i in $(seq 50); do
        order=$(api "$gw/v1/payments/po_${mid}_1")
        case $order in *'"captured":"10.00"'*) break ;; esac
        sleep 0.2
    done
    echo "10. the PSP's capture webhook books it: GET /v1/payments/po_${mid}_1 -> $order"
    # the same from the demo shop, as its shopper and its staff would do it:
    # Buy now, ship later; then the shop's own server captures, from its
    # orders page's form
    local page po pay_url session co row
    echo
    echo "== The demo shop's buy now, ship later: its server captures ($shop/orders)"
    answer=$(curl -s --cacert "$ca" -o /dev/null -w '%{http_code} %{redirect_url}' \
        -X POST "$shop/buy-later")
    pay_url=${answer#* }
    co=$(printf '%s' "$pay_url" | sed -n 's|.*/v1/checkouts/\(co_[a-p]*\)/pay?.*|\1|p')
    if [ "${answer%% *}" != 303 ] || [ -z "$co" ]; then
        echo "walk: the shop's Buy now, ship later answered ${answer%% *}"
        return 0
    fi
    echo "11. POST $shop/buy-later -> ${answer%% *} to the gateway's pay link for $co"
    session=$(curl -s --cacert "$ca" -o /dev/null -w '%{redirect_url}' "$pay_url" |
        sed -n 's|.*/pay/\([^/?]*\).*|\1|p')
    [ -n "$session" ] || { echo "walk: no hosted page"; return 0; }
    curl -s -X POST "$PAY_TEST_MOCK/_control/sessions/$session/pay" >/dev/null
    for i in $(seq 50); do
        page=$(curl -s --cacert "$ca" "$shop/held?order=$co")
        case $page in *'Order authorized'*) break ;; esac
        sleep 0.2
    done
    echo "12. the shopper pays on the PSP's page and is back at the shop: GET $shop/held?order=$co -> $(printf '%s' "$page" |
        sed -n 's/<[^>]*>//g; /^Order authorized/,/ships\./p' | tr '\n' ' ' | sed 's/ $//')"
    shop_row() {
        curl -s --cacert "$ca" "$shop/orders" | grep "data-order=\"$1\"" |
            sed 's/<[^>]*>/ /g; s/  */ /g; s/^ //; s/ $//'
    }
    po=po_${co#co_}_1
    echo "13. GET $shop/orders -> $(shop_row "$po")"
    answer=$(curl -s --cacert "$ca" -o /dev/null -w '%{http_code} %header{location}' \
        -X POST "$shop/orders/$po/capture")
    echo "14. the shop ships: Ship and capture, its form's POST $shop/orders/$po/capture -> $answer"
    echo "    (the shop's server: POST /v1/payments/$po/capture with its Idempotency-Key)"
    for i in $(seq 50); do
        row=$(shop_row "$po")
        case $row in *' SUCCESS '*) break ;; esac
        sleep 0.2
    done
    echo "15. the PSP's capture webhook books it: GET $shop/orders -> $row"
    # the demo shop's subscription: the first month paid on the PSP's page
    # saves the card (save_payment_method); the next month is charged by
    # the shop's server with the saved method, off-session, no browser
    local sub
    echo
    echo "== The demo shop's subscription: next month charged without the shopper ($shop/subscriptions)"
    answer=$(curl -s --cacert "$ca" -o /dev/null -w '%{http_code} %{redirect_url}' \
        -X POST "$shop/subscribe")
    pay_url=${answer#* }
    co=$(printf '%s' "$pay_url" | sed -n 's|.*/v1/checkouts/\(co_[a-p]*\)/pay?.*|\1|p')
    if [ "${answer%% *}" != 303 ] || [ -z "$co" ]; then
        echo "walk: the shop's Subscribe answered ${answer%% *}"
        return 0
    fi
    echo "16. POST $shop/subscribe -> ${answer%% *} to the gateway's pay link for $co"
    session=$(curl -s --cacert "$ca" -o /dev/null -w '%{redirect_url}' "$pay_url" |
        sed -n 's|.*/pay/\([^/?]*\).*|\1|p')
    [ -n "$session" ] || { echo "walk: no hosted page"; return 0; }
    curl -s -X POST "$PAY_TEST_MOCK/_control/sessions/$session/pay" >/dev/null
    sub=sub_${co#co_}
    sub_row() {
        curl -s --cacert "$ca" "$shop/subscriptions" | grep "data-$1=\"$2\"" |
            sed 's/<[^>]*>/ /g; s/  */ /g; s/^ //; s/ $//'
    }
    for i in $(seq 50); do
        row=$(sub_row subscription "$sub")
        case $row in *' active '*) break ;; esac
        sleep 0.2
    done
    echo "17. the shopper pays the first month on the PSP's page, which saves the card: GET $shop/subscriptions -> $row"
    answer=$(curl -s --cacert "$ca" -o /dev/null -w '%{http_code} %header{location}' \
        -X POST "$shop/subscriptions/$sub/charge?month=2")
    echo "18. next month, without the shopper: Charge next month, its form's POST $shop/subscriptions/$sub/charge?month=2 -> $answer"
    echo "    (the shop's server: POST /v1/payments {\"payment_method\": \"pm_…\", \"off_session\": true, ...} with its Idempotency-Key)"
    for i in $(seq 50); do
        row=$(sub_row renewal "${co}_m2")
        case $row in *' SUCCESS '*) break ;; esac
        sleep 0.2
    done
    echo "19. the PSP's webhook books it: GET $shop/subscriptions -> $row"
    answer=$(curl -s --cacert "$ca" -o /dev/null -w '%{http_code} %header{location}' \
        -X POST "$shop/subscriptions/$sub/charge?month=2")
    echo "    the same form again (a second click): $answer, the gateway's stored answer replayed under month 2's key; months charged: $(curl -s --cacert "$ca" "$shop/subscriptions" | grep -c "data-renewal=\"${co}_m")"
    answer=$(curl -s --cacert "$ca" -o /dev/null -w '%{http_code} %header{location}' \
        -X POST "$shop/subscriptions/$sub/cancel")
    echo "20. Cancel subscription: POST $shop/subscriptions/$sub/cancel -> $answer (DELETE /v1/payment_methods/pm_…): GET $shop/subscriptions -> $(sub_row subscription "$sub")"
    echo
}
[ "${DEMO_WALK:-1}" = 0 ] || walk

if [ -n "${DEMO_SECONDS:-}" ]; then
    sleep "$DEMO_SECONDS"
else
    while true; do sleep 3600; done
fi
