#!/usr/bin/env bash
# The demo shop next to a running gateway (ci/services.sh start RUN first).
#
#   ci/shop.sh start RUN    a merchant whose return origin is the shop, and
#                           build/demo_shop on a free loopback port (SHOP_PORT
#                           when nothing listens on it) with the
#                           run's certificate; writes RUN/shop.env (SHOP_URL,
#                           SHOP_MERCHANT_ID, SHOP_PID) and prints SHOP_URL
#   ci/shop.sh stop RUN     stops it
#
# Its subscriptions save cards at SHOP_SUBSCRIBE_PSP (default mock_generic,
# the generic PSP of tests/e2e/nginx.conf.in: its event tells the card's
# brand and last four, which Stripe's and Adyen's signed events do not).
#
# The shop's API key reaches it through the environment only, never a
# command line (ps shows those) or a log.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-build}
case $build in /*) ;; *) build=$top/$build ;; esac

die() { echo "shop.sh: $*" >&2; exit 1; }

cmd=${1:-}
run=${2:-}
[ -n "$cmd" ] && [ -n "$run" ] || die "usage: $0 start|stop RUN"

case $cmd in
start)
    [ -f "$run/env" ] || die "$run/env: start ci/services.sh first"
    # shellcheck disable=SC1091
    . "$run/env"
    [ -x "$build/demo_shop" ] || make -s -C "$top" BUILD="$build" demo-shop

    port=$(bash "$top/ci/services.sh" port "${SHOP_PORT:-}")
    shop=https://127.0.0.1:$port
    merchant=shop$(date +%s)
    key=$("$top/bin/payments-merchant" --db "$PAY_TEST_PG" create --id "$merchant" \
        --name "Demo shop" --origin "$shop" 2>>"$run/logs/services.log" | tail -1)
    [[ $key =~ ^mk_(test|live)_[A-Za-z0-9]{12}_ ]] || die "bin/payments-merchant printed no key"

    DEMO_SHOP_API_KEY=$key nohup "$build/demo_shop" --port "$port" \
        --gateway "$PAY_TEST_GW" --gateway-ca "$PAY_TEST_CA" --psp "$PAY_TEST_PSP" \
        --subscribe-psp "${SHOP_SUBSCRIBE_PSP:-mock_generic}" \
        --cert "$run/conf/tls.crt" --key "$run/conf/tls.key" \
        </dev/null >"$run/logs/shop.log" 2>&1 &
    pid=$!
    for _ in $(seq 100); do
        if curl -sf -o /dev/null --max-time 2 --cacert "$PAY_TEST_CA" "$shop/"; then
            printf 'export SHOP_URL=%q\nexport SHOP_MERCHANT_ID=%q\nexport SHOP_PID=%q\n' \
                "$shop" "$merchant" "$pid" >"$run/shop.env"
            echo "$shop"
            exit 0
        fi
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    tail -20 "$run/logs/shop.log" >&2
    kill "$pid" 2>/dev/null || true
    die "the demo shop did not come up"
    ;;
stop)
    [ -f "$run/shop.env" ] || exit 0
    # shellcheck disable=SC1091
    . "$run/shop.env"
    kill -TERM "$SHOP_PID" 2>/dev/null || true
    for _ in $(seq 50); do
        kill -0 "$SHOP_PID" 2>/dev/null || exit 0
        sleep 0.1
    done
    kill -KILL "$SHOP_PID" 2>/dev/null || true
    ;;
*)
    die "usage: $0 start|stop RUN"
    ;;
esac
