#!/usr/bin/env bash
# The browser journey (`make browser`, and the "browser" suite of ci/test.sh):
# Debian's Chromium, headless, through the demo shop, the gateway, the mock
# PSP's hosted page and back, and on to the shop's orders page for its
# manual captures and its subscriptions page for an off-session renewal
# (subscriptions save the card at the mock's generic PSP, whose event tells
# the card's brand and last four).  Installs what is missing (ci/install-deps.sh
# --browser: Chromium and Node from Debian, playwright-core from the lock
# file; never a browser download), starts PostgreSQL + mock PSP + nginx
# (ci/services.sh), a merchant whose return origin is the shop, the demo
# shop, runs journey.test.js and stops it all.  Nothing is ever skipped: a
# missing Chromium is a failure.  The last line is "browser: N passed, N
# failed".
#
# Environment: BUILD (default build), BROWSER_RUN (the run directory, the
# caller's: kept; default a fresh /tmp/ngx-payments-browser.XXXXXX, removed
# when everything passed and kept, with its logs and the screenshots
# browser-*.png, when anything failed), BROWSER_KEEP=1 (keep the fresh one
# anyway, for its screenshots), BROWSER_TIMEOUT (seconds for the test, 150).
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
here=$top/tests/browser
cd "$top"
build=${BUILD:-build}
case $build in /*) ;; *) build=$top/$build ;; esac
export BUILD=$build
chromium=${CHROMIUM:-/usr/bin/chromium}
budget=${BROWSER_TIMEOUT:-150}

say() { echo "browser: $*"; }

run=''
own_run=0
shop_pid=''
counted=0
ok=0

# Stops what was started.  When everything passed, the run directory goes
# (a fresh one of ours; the caller's BROWSER_RUN, or ours with BROWSER_KEEP=1,
# stays without its database); when anything failed it stays, with the tails
# of its logs printed.  Whatever failed before the test ran is one failure
# in the count.
# whether the run directory stays (see finish)
keep_run() {
    [ "$ok" != 1 ] || [ "$own_run" != 1 ] || [ "${BROWSER_KEEP:-0}" = 1 ]
}

# shellcheck disable=SC2317  # invoked by the EXIT trap
finish() {
    local rc=$? log
    if [ -n "$shop_pid" ] && kill -0 "$shop_pid" 2>/dev/null; then
        kill -TERM "$shop_pid" 2>/dev/null || true
        for _ in $(seq 50); do
            kill -0 "$shop_pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$shop_pid" 2>/dev/null || true
    fi
    if [ -n "$run" ]; then
        bash "$top/ci/services.sh" stop "$run" || true
        if ! keep_run; then
            rm -rf "$run"
        elif [ "$ok" = 1 ]; then
            rm -rf "$run/pg"
        else
            [ "$counted" = 1 ] || say "logs kept in $run"
            for log in shop.log error.log mock.log; do
                if [ -f "$run/logs/$log" ]; then
                    echo "---- tail of $run/logs/$log" >&2
                    tail -n 30 "$run/logs/$log" >&2
                fi
            done
        fi
    fi
    [ "$counted" = 1 ] || echo "browser: 0 passed, 1 failed"
    exit "$rc"
}
trap finish EXIT
trap 'exit 130' INT TERM

# --- what it needs --------------------------------------------------------------
# Debian's chromium, nodejs and npm, and playwright-core from the lock file
# (never a browser download): ci/install-deps.sh --browser, which touches
# neither apt nor npm when all is there.  Anything missing fails the suite.
bash "$top/ci/install-deps.sh" --browser || { say "its dependencies are missing"; exit 1; }
[ -x "$chromium" ] || { say "$chromium is missing"; exit 1; }
say "$("$chromium" --version 2>/dev/null | head -1), node $(node --version)," \
    "playwright-core $(node -p 'require(process.argv[1]).version' \
        "$here/node_modules/playwright-core/package.json")"

make -s -C "$top" BUILD="$build" module mock demo-shop

# --- services -------------------------------------------------------------------
if [ -n "${BROWSER_RUN:-}" ]; then
    run=$BROWSER_RUN
    mkdir -p "$run"
else
    run=$(mktemp -d /tmp/ngx-payments-browser.XXXXXX)
    own_run=1
fi
run=$(cd "$run" && pwd)
chmod 755 "$run"

bash "$top/ci/services.sh" start "$run" --public-origin self --lease 30s
# shellcheck disable=SC1091
. "$run/env"

# A free loopback port (as ci/services.sh picks them), for the shop.
port_free() {
    if command -v ss >/dev/null 2>&1; then
        [ -z "$(ss -Htan "( sport = :$1 )" 2>/dev/null)" ]
    else
        ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
    fi
}
shop_port=''
for _ in $(seq 200); do
    p=$((33000 + (RANDOM * 32768 + RANDOM) % 7000))
    if port_free "$p"; then shop_port=$p; break; fi
done
[ -n "$shop_port" ] || { say "no free port for the shop"; exit 1; }
shop=https://127.0.0.1:$shop_port

# The shop's merchant: its return origin is the shop.
merchant=browser_shop
key=$("$top/bin/payments-merchant" --db "$PAY_TEST_PG" create --id "$merchant" \
    --name "Browser demo shop" --origin "$shop" 2>>"$run/logs/services.log" | tail -1)
[[ $key =~ ^mk_(test|live)_([A-Za-z0-9]{12})_ ]] ||
    { say "bin/payments-merchant printed no key"; exit 1; }
mid=$(psql "$PAY_TEST_PG" -XAtq -v ON_ERROR_STOP=1 \
    -c "SELECT merchant_id FROM pay_auth('${BASH_REMATCH[2]}')")

# The shop, with the run's certificate (for 127.0.0.1) as its own too.
DEMO_SHOP_API_KEY=$key nohup "$build/demo_shop" --port "$shop_port" \
    --gateway "$PAY_TEST_GW" --gateway-ca "$PAY_TEST_CA" --psp "$PAY_TEST_PSP" \
    --subscribe-psp mock_generic \
    --cert "$run/conf/tls.crt" --key "$run/conf/tls.key" \
    </dev/null >"$run/logs/shop.log" 2>&1 &
shop_pid=$!
up=0
for _ in $(seq 100); do
    if curl -sf -o /dev/null --max-time 2 --cacert "$PAY_TEST_CA" "$shop/"; then
        up=1
        break
    fi
    kill -0 "$shop_pid" 2>/dev/null || break
    sleep 0.1
done
[ "$up" = 1 ] || { tail -20 "$run/logs/shop.log" >&2; say "the demo shop did not come up"; exit 1; }
say "shop $shop (merchant $mid), gateway $PAY_TEST_GW, mock PSP $PAY_TEST_MOCK"

# --- the test -------------------------------------------------------------------
tap=$run/logs/journey.tap
rc=0
(
    cd "$here"
    SHOP_URL=$shop SHOP_MERCHANT_ID=$mid SHOP_API_KEY=$key BROWSER_OUT=$run \
        CHROMIUM=$chromium \
        timeout --kill-after=10 "$budget" node --test --test-reporter=tap journey.test.js
) 2>&1 | tee "$tap" || rc=$?

pass=$(sed -n 's/^# pass \([0-9][0-9]*\)$/\1/p' "$tap" | tail -1)
fail=$(sed -n 's/^# fail \([0-9][0-9]*\)$/\1/p' "$tap" | tail -1)
cancelled=$(sed -n 's/^# cancelled \([0-9][0-9]*\)$/\1/p' "$tap" | tail -1)
pass=${pass:-0}
fail=$(( ${fail:-0} + ${cancelled:-0} ))
# a runner that died, or failed outside any test
if [ "$rc" -ne 0 ] && [ "$fail" -eq 0 ]; then fail=1; fi
if [ "$rc" -eq 124 ]; then say "timed out after ${budget}s"; fi

echo
say "screenshots: $(cd "$run" && ls browser-*.png 2>/dev/null | tr '\n' ' ')"
if [ "$rc" -eq 0 ] && [ "$fail" -eq 0 ] && [ "$pass" -gt 0 ]; then
    ok=1
fi
if keep_run; then
    say "screenshots and logs kept in $run"
else
    say "all passed: the run directory goes (BROWSER_KEEP=1 keeps it)"
fi
counted=1
echo "browser: $pass passed, $fail failed"
[ "$ok" = 1 ] || exit 1
