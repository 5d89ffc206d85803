#!/usr/bin/env bash
# `make bench-notify` (or `bash bench/notify.sh`): notifications to merchants
# (doc/NOTIFICATIONS.md), end to end, on this machine:
#   1. the webhook path without a subscribed endpoint: verified-and-committed
#      Stripe events per second (wrk -c64, bench/webhooks.lua, unique events
#      for unique checkouts signed in advance, as bench/run.sh's webhooks);
#   2. the same with every merchant subscribed (one endpoint each, on
#      ci/receiver.sh's receiver): each event now also writes its outbox
#      row in the same transaction, and the workers deliver meanwhile;
#   3. the notifications of 2 delivered end to end: their number, the time
#      from the first webhook to the last 2xx at the receiver (every
#      delivery checked there by standardwebhooks), and how long the backlog
#      took to drain once the webhooks stopped.
# One nginx worker (BENCH_WORKERS), payments_notify interval=100ms batch=64
# (BENCH_NOTIFY_PARAMS).  Environment: BENCH_SECONDS (10), BENCH_WEBHOOKS
# (40000 checkouts prepared for each side; a run that commits them all
# stops and says so), BENCH_MERCHANTS (10),
# BENCH_NOTIFY_WAIT (300 s for the backlog).  Results are appended to
# bench/results/notify-<time>.txt.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
secs=${BENCH_SECONDS:-10}
nwh=${BENCH_WEBHOOKS:-40000}
nmerchants=${BENCH_MERCHANTS:-10}
workers=${BENCH_WORKERS:-1}
wait_max=${BENCH_NOTIFY_WAIT:-300}
params=${BENCH_NOTIFY_PARAMS:-interval=100ms batch=64 timeout=10s connect_timeout=3s lease=60s}

bash ci/install-deps.sh --core
make -s module mock

run=$(mktemp -d /tmp/ngx-payments-bench-notify.XXXXXX)
chmod 755 "$run"
cleanup() {
    local rc=$?
    bash ci/receiver.sh stop "$run" || true
    bash ci/services.sh finish "$run" "$rc" bench/notify.sh
}
trap cleanup EXIT

# bench/nginx.conf.in with the notification lines (loopback endpoints: the
# receiver serves the gateway's own certificate)
sed '/payments_pay_token_key/a\
    payments_notify on '"$params"' allow_loopback=on ca=@NOTIFY_CA@;' \
    bench/nginx.conf.in >"$run/notify.conf.in"

bash ci/services.sh start "$run" --template "$run/notify.conf.in" --lease 30s \
    --workers "$workers" >/dev/null
bash ci/receiver.sh start "$run" >/dev/null
# shellcheck disable=SC1091
. "$run/env"
# shellcheck disable=SC1091
. "$run/receiver.env"
export PAY_PSP=$PAY_TEST_PSP

out=$top/bench/results/notify-$(date -u +%Y%m%dT%H%M%SZ).txt
mkdir -p "$(dirname "$out")"
say() { echo "$*" | tee -a "$out"; }
# wrk_rate, wrk_tail and the webhooks' wh_* (bench/lib.sh)
# shellcheck source=bench/lib.sh
. bench/lib.sh
now_ms() { date +%s%3N; }
stat_of() {   # stat_of NAME: a number from the receiver's /_control/stats
    curl -sf "$PAY_TEST_RECEIVER_CONTROL/_control/stats" |
        node -e 'let s="";process.stdin.on("data",c=>s+=c).on("end",()=>{const v=JSON.parse(s)[process.argv[1]];console.log(v===null?"":v)})' "$1"
}

tag=$(date +%s)
wh_tools     # sign_events and blind_index (bench/lib.sh)

# prepare MERCHANT PREFIX N: N registered, unpaid checkouts (as bench/run.sh)
prepare() { wh_prepare "$PAY_TEST_PG" "$@"; }

# events LIKE: the signed events of the checkouts whose ids are LIKE that,
# their tokens first keyed by blind index as the gateway keys those it
# registers (wh_index: else each event misses both keys' indexes first)
events() {
    wh_index "$PAY_TEST_PG" "$1"
    psql "$PAY_TEST_PG" -XAtq -F $'\t' -c "SELECT merchant_id, checkout_id, psp_token, amount_total
        FROM checkouts WHERE checkout_id LIKE '$1' ORDER BY random()" |
        "$run/sign_events" "$(cat "$PAY_TEST_WEBHOOK_SECRET")"
}

paid() { wh_paid "$PAY_TEST_PG" "$1"; }   # paid LIKE: how many are paid

say "ngx_payments notifications benchmark, $(date -u), $(nproc) cores, ${secs}s runs," \
    "$workers worker(s), payments_notify $params"

# merchant ID: a merchant of the bench (it may already exist)
merchant() {
    local outp
    outp=$(bin/payments-merchant --db "$PAY_TEST_PG" create --id "$1" --name "$1" \
        --origin https://shop.example 2>&1) ||
        { echo "bench/notify.sh: payments-merchant create $1 failed: $outp" >&2; exit 1; }
}

# The two sides differ only in the subscription: the same number of
# merchants (a merchant's webhooks share its sellers' wallet rows), the same
# number of checkouts each.
per=$(( (nwh + nmerchants - 1) / nmerchants ))

# --- 0. a warm-up: the demo merchant's own, without an endpoint --------------
prepare "$PAY_TEST_MERCHANT_ID" "nw$tag" 3000
events "nw${tag}x%" >"$run/events-warm.tsv"
EVENTS=$run/events-warm.tsv wrk -t2 -c64 -d2s -s bench/webhooks.lua \
    "$PAY_TEST_GW_PLAIN" >/dev/null 2>&1

# ran_out WHAT PAID FILE: every event of FILE committed before the run ended,
# so PAID / secs would be the supply, not the gateway's rate: stop and say so
ran_out() {
    if [ "$2" -ge "$(wc -l < "$3")" ]; then
        echo "bench/notify.sh: $1: all $2 events were committed before the ${secs} s run ended;" \
            "the rate would be the supply, not the gateway's: raise BENCH_WEBHOOKS" >&2
        exit 1
    fi
}

# --- 1. no endpoint ----------------------------------------------------------------
for i in $(seq "$nmerchants"); do
    merchant "bench_p$i"
    prepare "bench_p$i" "nn${tag}m$i" "$per"
done
events "nn${tag}m%" >"$run/events-none.tsv"
EVENTS=$run/events-none.tsv wrk -t2 -c64 -d"${secs}s" -s bench/webhooks.lua \
    "$PAY_TEST_GW_PLAIN" >"$run/wh-none.log" 2>&1
rate_none=$(wrk_rate "$run/wh-none.log")
# unique events committed per second (wrk's rate counts the duplicates sent
# once every event was: BENCH_WEBHOOKS must exceed what a run sends)
paid_none=$(paid "nn${tag}m%")
ran_out "no endpoint" "$paid_none" "$run/events-none.tsv"
uniq_none=$(awk -v n="$paid_none" -v s="$secs" 'BEGIN { printf "%.0f", n / s }')
echo "bench/notify.sh: no endpoint: $uniq_none webhooks/s; now with an endpoint each" >&2

# --- 2. every merchant with one endpoint ---------------------------------------
for i in $(seq "$nmerchants"); do
    mid=bench_n$i
    merchant "$mid"
    outp=$(bin/payments-merchant --db "$PAY_TEST_PG" --key-file "$PAY_TEST_ENCRYPTION_KEY" add-endpoint --id "$mid" \
        --url "$PAY_TEST_RECEIVER/hooks/$mid" --allow-loopback 2>&1) ||
        { echo "bench/notify.sh: add-endpoint failed: $outp" >&2; exit 1; }
    secret=$(grep -oE 'whsec_[A-Za-z0-9+/=]+' <<<"$outp" | head -1)
    [ -n "$secret" ] || { echo "bench/notify.sh: add-endpoint printed no secret" >&2; exit 1; }
    curl -sf -o /dev/null -H 'Content-Type: application/json' \
        -d "{\"path\":\"/hooks/$mid\",\"secrets\":[\"$secret\"]}" \
        "$PAY_TEST_RECEIVER_CONTROL/_control/secrets"
    prepare "$mid" "ns${tag}m$i" "$per"
done
events "ns${tag}m%" >"$run/events-sub.tsv"

t0=$(now_ms)
EVENTS=$run/events-sub.tsv wrk -t2 -c64 -d"${secs}s" -s bench/webhooks.lua \
    "$PAY_TEST_GW_PLAIN" >"$run/wh-sub.log" 2>&1
t1=$(now_ms)
rate_sub=$(wrk_rate "$run/wh-sub.log")
paid_sub=$(paid "ns${tag}m%")
ran_out "with endpoints" "$paid_sub" "$run/events-sub.tsv"
uniq_sub=$(awk -v n="$paid_sub" -v s="$secs" 'BEGIN { printf "%.0f", n / s }')
echo "bench/notify.sh: with endpoints: $uniq_sub webhooks/s; waiting for the deliveries" >&2

# --- 3. until every notification of 2 is delivered ------------------------------
want=$paid_sub
got=0
for _ in $(seq $((wait_max * 5))); do
    got=$(stat_of delivered_ids)
    [ "${got:-0}" -ge "$want" ] && break
    sleep 0.2
done
t2=$(stat_of last_delivered_ms)
unverified=$(stat_of unverified)
total=$(stat_of delivered)

# (parenthesised: a bare ">" in awk's printf is a redirection)
e2e_s=$(awk -v a="$t0" -v b="${t2:-$t0}" 'BEGIN { printf "%.2f", (b - a) / 1000 }')
drain_s=$(awk -v a="$t1" -v b="${t2:-$t1}" 'BEGIN { d = (b - a) / 1000; printf "%.2f", (d < 0 ? 0 : d) }')
rate_e2e=$(awk -v n="$got" -v a="$t0" -v b="${t2:-$t0}" 'BEGIN { printf "%.0f", (b > a ? n * 1000 / (b - a) : 0) }')
ratio=$(awk -v a="$uniq_sub" -v b="$uniq_none" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')

say
say "| measure                                         | value |"
say "| ----------------------------------------------- | ----- |"
say "| webhooks/s, no endpoint subscribed              | $uniq_none ($paid_none events, $nmerchants merchants; wrk $rate_none/s $(wrk_tail "$run/wh-none.log")) |"
say "| webhooks/s, every merchant with an endpoint     | $uniq_sub ($paid_sub events, $nmerchants merchants; wrk $rate_sub/s $(wrk_tail "$run/wh-sub.log")) |"
say "| with / without (the outbox on the webhook path) | $ratio |"
say "| notifications to deliver (checkouts paid in 2)  | $want |"
say "| delivered (distinct, verified by the receiver)  | $got ($total 2xx answers, $unverified unverified) |"
say "| first webhook to last delivery                  | $e2e_s s |"
say "| notifications delivered per second, end to end  | $rate_e2e |"
say "| backlog drained after the webhooks stopped in   | $drain_s s |"
if [ "${got:-0}" -lt "$want" ]; then
    say "bench/notify.sh: only $got of $want delivered within ${wait_max}s"
    exit 1
fi
say "results: $out"
grep -E '\[(alert|crit|emerg)\]' "$run/logs/error.log" | head -5 | tee -a "$out" || true
