#!/usr/bin/env bash
# `make bench-limits`: requests rejected per second by the module's limits
# against nginx's own limit_req keyed on $binary_remote_addr, side by side in
# one run: the same nginx (one worker), servers that differ only in who
# rejects (bench/limits.conf.in), every rate 1r/m so that nearly every
# request is a 429.
#   GET  the pay page:   limit_req  vs  payments_limit pages= (by address)
#   POST /v1/payments:   limit_req  vs  payments_limit create_address=
#                        vs  payments_limit create_merchant= (the API key
#                        checked first: its cached row and SHA-256 compared)
#                        vs  no limit, an invalid Idempotency-Key (400 right
#                        after the key check): what the key check costs
# The pay page and the per-merchant limit once more with their zones kept
# in a Redis (store=redis): Debian's redis-server on loopback, started here
# and stopped with the run; every request is one EVALSHA on the worker's
# connection to it.
# Three rounds, interleaved, to show the spread.  Environment: BENCH_SECONDS
# (4), BENCH_CONNECTIONS (64); BENCH_OUT: the results file to append to
# (make bench's).
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
secs=${BENCH_SECONDS:-4}
conns=${BENCH_CONNECTIONS:-64}

make -s module mock

run=$(mktemp -d /tmp/ngx-payments-bench-limits.XXXXXX)
chmod 755 "$run"
redis_pid=
# the run directory goes when the run succeeds (KEEP_RUN=1 keeps it); Redis
# goes with the run
trap 'rc=$?; [ -z "$redis_pid" ] || kill "$redis_pid" 2>/dev/null || true; bash ci/services.sh finish "$run" $rc bench/limits.sh' EXIT

# Redis for the zones with store=redis: a free loopback port, no disk
redis_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
redis-server --bind 127.0.0.1 --port "$redis_port" --save '' --appendonly no \
    --daemonize no --logfile "$run/redis.log" &
redis_pid=$!
for _ in $(seq 50); do
    redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break
    sleep 0.1
done
sed "s/@REDIS_PORT@/$redis_port/" bench/limits.conf.in > "$run/limits.conf.in"

bash ci/services.sh start "$run" --template "$run/limits.conf.in" --lease 30s --workers 1
# shellcheck disable=SC1091
. "$run/env"
export PAY_KEY=$PAY_TEST_MERCHANT_KEY

out=${BENCH_OUT:-$top/bench/results/limits-$(date -u +%Y%m%dT%H%M%SZ).txt}
mkdir -p "$(dirname "$out")"
say() { echo "$*" | tee -a "$out"; }

# the worker's CPU time in clock ticks (user + system)
worker_ticks() {
    local w
    w=$(ps -o pid= --ppid "$(cat "$run/nginx.pid")" | head -1 | tr -d ' ')
    awk '{ print $14 + $15 }' "/proc/$w/stat"
}
hz=$(getconf CLK_TCK)

# one METHOD HOST: rejections per second of wall time, and per second of the
# worker's CPU time (which the other tenants of the machine disturb less)
one() {
    local t0 t1 total rate
    t0=$(worker_ticks)
    LIM_METHOD=$1 LIM_HOST=$2 wrk -t2 -c"$conns" -d"${secs}s" -s bench/limits.lua \
        "$PAY_TEST_GW_PLAIN" > "$run/wrk.log" 2>&1
    t1=$(worker_ticks)
    total=$(awk '/requests in/ { print $1 }' "$run/wrk.log")
    rate=$(awk '/^Requests\/sec/ { printf "%.0f", $2 }' "$run/wrk.log")
    echo "$rate/s wall, $(awk -v n="$total" -v t=$((t1 - t0)) -v hz="$hz" \
        'BEGIN { printf "%.0f/s of worker CPU (%.2f us each)", n * hz / t, t * 1e6 / hz / n }'), $(grep -E '^p50=' "$run/wrk.log" | cut -d' ' -f1-2)"
}

# each server rejects the request wrk sends: a 429 once its first passed
check() {   # check METHOD HOST
    local code
    for _ in 1 2; do
        if [ "$1" = POST ]; then
            code=$(curl -s -o /dev/null -w '%{http_code}' -H "Host: $2" \
                -H "Authorization: Bearer $PAY_KEY" -H 'Idempotency-Key: bench-limits' \
                -H 'Content-Type: application/json' -d '{}' "$PAY_TEST_GW_PLAIN/v1/payments")
        else
            code=$(curl -s -o /dev/null -w '%{http_code}' -H "Host: $2" \
                "$PAY_TEST_GW_PLAIN/v1/checkouts/co_bench/pay?t=x")
        fi
    done
    [ "$code" = 429 ] || { echo "limits.sh: $1 on $2 answered $code, not 429" >&2; exit 1; }
}
for h in nginx.bench pages.bench pages-redis.bench; do check GET $h; done
for h in nginx.bench address.bench merchant.bench merchant-redis.bench; do check POST $h; done

say "ngx_payments rate-limit benchmark, $(date -u), $(nproc) cores, ${secs}s runs, $conns connections, 1 worker"

for round in 1 2 3; do
    say "round $round"
    say "  GET pay page,  nginx limit_req (\$binary_remote_addr): $(one GET nginx.bench)"
    say "  GET pay page,  payments_limit pages=                 : $(one GET pages.bench)"
    say "  GET pay page,  payments_limit pages= in Redis        : $(one GET pages-redis.bench)"
    say "  POST payments, nginx limit_req (\$binary_remote_addr): $(one POST nginx.bench)"
    say "  POST payments, payments_limit create_address=        : $(one POST address.bench)"
    say "  POST payments, payments_limit create_merchant=       : $(one POST merchant.bench)"
    say "  POST payments, payments_limit create_merchant= Redis : $(one POST merchant-redis.bench)"
    say "  POST payments, no limit, 400 after the key check     : $(one POSTBAD auth.bench)"
done

grep -E '\[(alert|crit|emerg)\]' "$run/logs/error.log" | head -5 | tee -a "$out" || true
# a Redis check that fell back would measure the local zone, not Redis
fb=$(curl -s "$PAY_TEST_GW_PLAIN/metrics" | awk '/^payments_limit_store_fallbacks_total/ { n += $2 } END { print n + 0 }')
say "checks of the Redis zones decided without Redis: $fb"
say "results: $out"
