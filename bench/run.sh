#!/usr/bin/env bash
# `make bench`: the registration path against its peers, side by side, in one
# run on this machine (see bench/README.md).
#   1. the gateway: POST /v1/payments, every request its own key and checkout,
#      the mock PSP answering after 200 ms, one nginx worker, 256 connections
#      (plain HTTP on loopback, like the peer; then once more over TLS; then
#      with the PSP failing every second call);
#   2. the peer: Debian's nginx proxying to a 200 ms upstream
#      (bench/peer/plain_proxy_nginx.conf, unique_keys.lua);
#   3. pgbench running the SQL one registration commits;
#   4. the worker's memory before and after BENCH_REQUESTS registrations;
#   5. webhooks: verified-and-committed Stripe events per second at 64
#      connections (unique events for unique checkouts, signed in advance),
#      against pgbench running the same pay_webhook_apply transaction;
#   6. reconciliation: rows per second of payments-reconcile on a generated
#      100,000-row report (bench/reconcile.sh, BENCH_RECON_ROWS).
# Environment: BENCH_SECONDS (10), BENCH_REQUESTS (100000), BENCH_CONNECTIONS
# (256), BENCH_WEBHOOKS (30000 checkouts prepared for each side).
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
peer_conf=$top/bench/peer
secs=${BENCH_SECONDS:-10}
total=${BENCH_REQUESTS:-100000}
conns=${BENCH_CONNECTIONS:-256}

bash ci/install-deps.sh
dpkg-query -W -f='${Status}' libnginx-mod-http-echo 2>/dev/null | grep -q "ok installed" ||
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libnginx-mod-http-echo >/dev/null
make -s module mock

run=$(mktemp -d /tmp/ngx-payments-bench.XXXXXX)
chmod 755 "$run"
peer=$run/peer
cleanup() {
    if [ -f "$peer/nginx.pid" ]; then
        kill -QUIT "$(cat "$peer/nginx.pid")" 2>/dev/null || true
    fi
    bash ci/services.sh stop "$run" || true
}
trap cleanup EXIT

bash ci/services.sh start "$run" --template bench/nginx.conf.in --lease 30s \
    --mock-latency 200 --workers 1
# shellcheck disable=SC1091
. "$run/env"

out=$top/bench/results/$(date -u +%Y%m%dT%H%M%SZ).txt
mkdir -p "$(dirname "$out")"
say() { echo "$*" | tee -a "$out"; }

worker_rss() {
    local master
    master=$(cat "$run/nginx.pid")
    ps -o rss= --ppid "$master" | awk '{ s += $1 } END { print s + 0 }'
}

# wrk_rate LOG: requests/s from a wrk log
wrk_rate() { awk '/^Requests\/sec/ { print $2 }' "$1"; }
wrk_tail() { grep -E '^p50=' "$1"; }

say "ngx_payments benchmark, $(date -u), $(nproc) cores, ${secs}s runs, $conns connections"
say

# 1. the gateway
export PAY_KEY=$PAY_TEST_MERCHANT_KEY PAY_PSP=$PAY_TEST_PSP
wrk -t2 -c"$conns" -d3s -s bench/registrations.lua "$PAY_TEST_GW_PLAIN" >/dev/null  # warm-up
rss0=$(worker_rss)
wrk -t2 -c"$conns" -d"${secs}s" --latency -s bench/registrations.lua "$PAY_TEST_GW_PLAIN" \
    > "$run/gw.log" 2>&1
gw=$(wrk_rate "$run/gw.log")
say "gateway (plain HTTP)  : $gw registrations/s  $(wrk_tail "$run/gw.log")"
wrk -t2 -c"$conns" -d"${secs}s" -s bench/registrations.lua "$PAY_TEST_GW" \
    > "$run/gw-tls.log" 2>&1
say "gateway (TLS)         : $(wrk_rate "$run/gw-tls.log") registrations/s  $(wrk_tail "$run/gw-tls.log")"

# 1b. the PSP failing every second call (503): the gateway's retries
# (backoff with jitter, same nonce) hide it, at some cost
curl -s -X POST "$PAY_TEST_MOCK/_control/faults" \
    -d '{"match":"","fail_every":2,"fail_status":503}' >/dev/null
wrk -t2 -c"$conns" -d"${secs}s" --latency -s bench/registrations.lua "$PAY_TEST_GW_PLAIN" \
    > "$run/gw-half.log" 2>&1
curl -s -X POST "$PAY_TEST_MOCK/_control/reset" >/dev/null
say "gateway, PSP failing half its calls: $(wrk_rate "$run/gw-half.log") registrations/s" \
    "$(wrk_tail "$run/gw-half.log") (healthy: $gw/s, ratio" \
    "$(awk -v a="$(wrk_rate "$run/gw-half.log")" -v b="$gw" 'BEGIN { printf "%.2f", a / b }'))"

# 2. the peer
mkdir -p "$peer/logs" "$peer/tmp"
cp "$peer_conf/plain_proxy_nginx.conf" "$peer/nginx.conf"
nginx -p "$peer" -c nginx.conf
sleep 0.5
wrk -t2 -c"$conns" -d"${secs}s" -s "$peer_conf/unique_keys.lua" http://127.0.0.1:18080/v1/payments \
    > "$run/peer.log" 2>&1
px=$(wrk_rate "$run/peer.log")
say "plain nginx proxy     : $px requests/s  $(wrk_tail "$run/peer.log")"
kill -QUIT "$(cat "$peer/nginx.pid")"
rm -f "$peer/nginx.pid"

# 3. pgbench with the gateway's SQL, on the same database
kid=${PAY_TEST_MERCHANT_KEY#mk_test_}
kid=${kid%%_*}
db=${PAY_TEST_PG% user=*}
pgbench -n -M extended -c 8 -j 2 -T "$secs" -U payments_gateway -D key_id="$kid" \
    -f bench/registration.pgbench "$db" > "$run/pgbench.log" 2>&1
pg=$(awk '/^tps = / { print $3; exit }' "$run/pgbench.log")
say "pgbench (same SQL, 8 clients): $pg registrations/s"
say
say "ratios: gateway/proxy = $(awk -v a="$gw" -v b="$px" 'BEGIN { printf "%.2f", a / b }')," \
    "gateway/pgbench = $(awk -v a="$gw" -v b="$pg" 'BEGIN { printf "%.2f", a / b }')"

# 4. memory over many registrations
rss1=$(worker_rss)
need=$(awk -v n="$total" -v r="$gw" 'BEGIN { s = int(n / r) + 1; print (s < 5 ? 5 : s) }')
wrk -t2 -c"$conns" -d"${need}s" -s bench/registrations.lua "$PAY_TEST_GW_PLAIN" \
    > "$run/soak.log" 2>&1
done_n=$(awk '/requests in/ { print $1 }' "$run/soak.log")
rss2=$(worker_rss)
say "worker RSS: ${rss0} kB after warm-up, ${rss1} kB after the runs above," \
    "${rss2} kB after $done_n more registrations ($(wrk_rate "$run/soak.log")/s, $(wrk_tail "$run/soak.log"))"

# 5. webhooks
nwh=${BENCH_WEBHOOKS:-30000}
tag=$(date +%s)
cc -std=gnu11 -O2 -Wall -Wextra -Werror bench/sign_events.c -lcrypto -o "$run/sign_events"
prepare() {   # prepare PREFIX N: N registered, unpaid checkouts
    psql "$PAY_TEST_PG" -XAtq -v ON_ERROR_STOP=1 -c "
      DO \$\$ DECLARE i int; l bigint; exp bigint := extract(epoch FROM now())::bigint + 3600;
      BEGIN FOR i IN 1..$2 LOOP
        SELECT c.lease INTO l FROM pay_claim('$PAY_TEST_MERCHANT_ID', '$1-k' || i, repeat('a', 64),
          30, 86400, '$1x' || i, 'stripe', 'USD', 1500, 'https://shop.example/t',
          'https://shop.example/c', NULL, exp, '{}',
          jsonb_build_array(
            jsonb_build_object('payment_order_id', '$1x' || i || 'a', 'seller_account', 'seller_1', 'amount_minor', 1000),
            jsonb_build_object('payment_order_id', '$1x' || i || 'b', 'seller_account', 'seller_2', 'amount_minor', 500)),
          '{}') c;
        PERFORM pay_finish('$PAY_TEST_MERCHANT_ID', '$1-k' || i, l, '$1x' || i, 'EXECUTING',
          'cs_$1x' || i, 'https://psp.example/pay', exp, NULL, 201, '{}');
      END LOOP; END \$\$;"
}
prepare "wg$tag" "$nwh"
psql "$PAY_TEST_PG" -XAtq -F $'\t' -c "SELECT merchant_id, checkout_id, psp_token, amount_total
    FROM checkouts WHERE merchant_id = '$PAY_TEST_MERCHANT_ID' AND checkout_id LIKE 'wg${tag}x%'" |
    "$run/sign_events" "$(cat "$PAY_TEST_WEBHOOK_SECRET")" > "$run/events.tsv"
EVENTS=$run/events.tsv wrk -t2 -c64 -d"${secs}s" -s bench/webhooks.lua "$PAY_TEST_GW_PLAIN" \
    > "$run/webhooks.log" 2>&1
whr=$(wrk_rate "$run/webhooks.log")
sent=$(awk '/requests in/ { print $1 }' "$run/webhooks.log")
say "webhooks (64 conns)   : $whr verified+committed/s  $(wrk_tail "$run/webhooks.log")" \
    "($sent sent for $(wc -l < "$run/events.tsv") unique events)"

prepare "wp$tag" "$nwh"
psql "$PAY_TEST_PG" -XAtq -v ON_ERROR_STOP=1 -c "
    DROP TABLE IF EXISTS bench_webhook_queue; DROP SEQUENCE IF EXISTS bench_webhook_seq;
    CREATE SEQUENCE bench_webhook_seq;
    CREATE TABLE bench_webhook_queue AS
      SELECT row_number() OVER () AS id, psp_token FROM checkouts
       WHERE merchant_id = '$PAY_TEST_MERCHANT_ID' AND checkout_id LIKE 'wp${tag}x%';
    CREATE UNIQUE INDEX ON bench_webhook_queue (id);"
pgbench -n -M extended -c 8 -j 2 -T "$secs" -f bench/webhook.pgbench "$PAY_TEST_PG" \
    > "$run/pgbench-webhooks.log" 2>&1
pgw=$(awk '/^tps = / { print $3; exit }' "$run/pgbench-webhooks.log")
say "pgbench (same txn, 8 clients): $pgw webhooks/s; gateway/pgbench =" \
    "$(awk -v a="$whr" -v b="$pgw" 'BEGIN { printf "%.2f", a / b }')"
psql "$PAY_TEST_PG" -XAtq -c "SELECT 'ledger: ' || count(*) || ' transactions, ' ||
    count(*) FILTER (WHERE s <> 0) || ' unbalanced' FROM (SELECT sum(amount) s
    FROM ledger_entries GROUP BY merchant_id, txn_id, currency) x" | tee -a "$out"

# 6. reconciliation: rows reconciled per second on a 100,000-row report
#    (bench/reconcile.sh, its own throwaway database)
say "$(bash bench/reconcile.sh "${BENCH_RECON_ROWS:-100000}" | tail -n 1)"

say
say "results: $out"
grep -E '\[(alert|crit|emerg)\]' "$run/logs/error.log" | head -5 | tee -a "$out" || true
