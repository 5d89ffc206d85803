#!/usr/bin/env bash
# `make bench`: the registration path against its peers, side by side, in one
# run on this machine (see bench/README.md).
#   1. the gateway: POST /v1/payments, every request its own key and checkout,
#      the mock PSP answering after 200 ms, one nginx worker, 256 connections
#      (plain HTTP on loopback, like the peer, with the CPU each process
#      used per registration; then with a risk provider answering after
#      20 ms before every PSP call, BENCH_RISK_LATENCY_MS, and healthy
#      again, the risk line judged against the mean of its two neighbours;
#      then routed without "psp": healthy, with the route's first PSP's
#      circuit open, and healthy again, judged the same way; then once
#      more over TLS; then with the PSP failing every second call);
#   2. the peer: Debian's nginx proxying to a 200 ms upstream
#      (bench/peer/plain_proxy_nginx.conf, unique_keys.lua);
#   3. pgbench running the SQL one registration commits, then the same rows
#      in plain SQL (bench/rows_floor/reg_rows.sql, in database reg_floor);
#   4. the worker's memory before and after BENCH_REQUESTS registrations;
#   5. webhooks: verified-and-committed Stripe events per second at 64
#      connections (unique events for unique checkouts, signed in advance),
#      for 1 merchant and for 4 merchants (each with the CPU per event of
#      PostgreSQL, nginx and the rest), interleaved with pgbench running
#      the database's floor (bench/peer/db_floor/hook.sql, then reg.sql, in
#      database bench_floor of the same cluster) and the rows a paid webhook
#      writes in plain SQL (bench/rows_floor/hook_rows.sql, in database
#      rows_floor); then pg_stat_statements
#      over a short 1-merchant run, and pgbench running the gateway's own
#      webhook transaction (bench/webhook.pgbench: pay_event_keep with the
#      values the gateway sends, signed body and headers included);
#   6. reconciliation: rows per second of payments-reconcile on a generated
#      20,000-row report (bench/reconcile.sh, BENCH_RECON_ROWS).
#   7. merchant shards: webhooks with their merchants on two shards against
#      one, each shard's rate and CPU per event (bench/shards.sh, a stack of
#      its own);
#   8. limits: the module's limits against nginx's limit_req, and with their
#      zones kept in Redis (bench/limits.sh, a stack of its own).
# Environment: BENCH_SECONDS (10), BENCH_REQUESTS (50000), BENCH_CONNECTIONS
# (256), BENCH_WEBHOOKS (50000 checkouts prepared for each webhook side),
# BENCH_PARTS (which steps: "registrations webhooks reconcile shards
# limits"), PG_PRELOAD
# (pg_stat_statements; empty: no profile), BENCH_DB_POOL (the gateway's
# payments_database_pool; default: the machine's cores and one), PG_DURABLE
# (default 1: the cluster runs with fsync, synchronous_commit and
# full_page_writes on, as production must, and every target is judged so;
# 0: off, ci/pg.sh's test settings, as the runs before 2026-11-25 were),
# BENCH_PERF=DIR (perf's cpu-clock samples of the nginx workers, with DWARF
# call graphs, over the plain and the risk-checked registration runs,
# DIR/gw.data and DIR/gw-risk.data (~30 MB each), for `perf report -i
# --children`: where a line's nginx CPU goes, by caller; the sampling costs
# the workers some CPU, so such a run's rates are not the sitting's).
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
peer_conf=$top/bench/peer
secs=${BENCH_SECONDS:-10}
total=${BENCH_REQUESTS:-50000}
conns=${BENCH_CONNECTIONS:-256}
# durable unless told otherwise (ci/pg.sh reads it when the cluster starts)
export PG_DURABLE=${PG_DURABLE:-1}

bash ci/install-deps.sh
dpkg-query -W -f='${Status}' libnginx-mod-http-echo 2>/dev/null | grep -q "ok installed" ||
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libnginx-mod-http-echo >/dev/null
make -s module mock

run=$(mktemp -d /tmp/ngx-payments-bench.XXXXXX)
chmod 755 "$run"
peer=$run/peer
# the run directory (its database is 1-2 GB after a full run) goes when the
# run succeeds, as bench/notify.sh's does; the figures are in bench/results
cleanup() {
    local rc=$?
    if [ -f "$peer/nginx.pid" ]; then
        kill -QUIT "$(cat "$peer/nginx.pid")" 2>/dev/null || true
    fi
    bash ci/services.sh finish "$run" "$rc" bench/run.sh
}
trap cleanup EXIT

# pg_stat_statements for the webhook profile (step 5); PG_PRELOAD= turns it off
export PG_PRELOAD=${PG_PRELOAD-pg_stat_statements}
# the gateway's connections to PostgreSQL (payments_database_pool): the
# machine's cores and one, within doc/OPERATIONS.md's sizing rule (more only make
# the backends take turns on the cores; fewer slow the registrations, whose
# three round trips each hold a connection)
export PAY_DB_POOL=${BENCH_DB_POOL:-$(( $(nproc) + 1 ))}
# the risk provider of step 1c answers after 20 ms (the mock's --risk-latency-ms)
export PAY_RISK_LATENCY_MS=${BENCH_RISK_LATENCY_MS:-20}
bash ci/services.sh start "$run" --template bench/nginx.conf.in --lease 30s \
    --mock-latency 200 --workers 1
# shellcheck disable=SC1091
. "$run/env"

out=$top/bench/results/$(date -u +%Y%m%dT%H%M%SZ).txt
mkdir -p "$(dirname "$out")"
say() { echo "$*" | tee -a "$out"; }
# ratio, ticks, busy, steal, pg_parts, wrk_rate, wrk_tail, settle and the webhooks' wh_*
# shellcheck source=bench/lib.sh
. bench/lib.sh

# cpu_mark, then cpu_stop: the CPU time PostgreSQL, nginx and the mock PSP
# (each with its children) and the whole machine used in between;
# cpu_report N: that time per one of N events (PostgreSQL's with its
# backends' and its autovacuum workers' parts, nginx's with the part its
# workers spent in the kernel's system calls), how busy the cores were and
# how much of them the hypervisor stole
cpu_now() {
    local pm ng mk
    pm=$(head -1 "$PAY_TEST_PGDATA/postmaster.pid")
    ng=$(cat "$run/nginx.pid")
    mk=$(sed -n 's/^MOCK_PID=//p' "$run/state")
    echo "$(ticks "${pm:--}" "${ng:--}" "${mk:--}") $(busy) $(date +%s%N) $(steal) $(pg_parts "${pm:-0}") $(TICKS_PART=system ticks "${ng:--}")"
}
# cpu_mark [LABEL]: the CPU counters now; with BENCH_PERF and a LABEL, the
# nginx workers sampled by perf until cpu_stop (call graphs unwound from
# the stack: Debian's libraries keep no frame pointers, and a flat profile
# cannot say whose malloc it was)
perf_pid=
cpu_mark() {
    cpu_a=$(cpu_now)
    if [ -n "${BENCH_PERF:-}" ] && [ -n "${1:-}" ]; then
        command -v perf >/dev/null ||
            { echo "bench: BENCH_PERF needs perf (Debian's linux-perf)" >&2; exit 1; }
        mkdir -p "$BENCH_PERF"
        perf record -q -e cpu-clock -F 499 --call-graph dwarf,16384 -o "$BENCH_PERF/$1.data" \
            -p "$(ps -o pid= --ppid "$(cat "$run/nginx.pid")" | paste -sd, - | tr -d ' ')" \
            >/dev/null 2>&1 &
        perf_pid=$!
    fi
}
cpu_stop() {
    cpu_b=$(cpu_now)
    if [ -n "$perf_pid" ]; then
        kill -INT "$perf_pid" 2>/dev/null || true
        wait "$perf_pid" || true
        perf_pid=
    fi
}
cpu_report() {
    awk -v n="$1" -v a="$cpu_a" -v b="$cpu_b" -v hz="$(getconf CLK_TCK)" -v c="$(nproc)" 'BEGIN {
        if (split(a, x, " ") != 9 || split(b, y, " ") != 9 || n + 0 == 0) {
            print "CPU per event: n/a (a sample failed)"; exit }
        ms = 1000 / hz / n; s = (y[5] - x[5]) / 1e9
        p = y[1] - x[1]; g = y[2] - x[2]; m = y[3] - x[3]; t = y[4] - x[4]
        printf "cores %d%% busy, %d%% stolen; CPU per event: PostgreSQL %.2f ms (its backends %.2f, autovacuum %.2f), nginx %.2f ms (in system calls %.2f), the mock PSP %.2f ms, the rest (wrk, the kernel) %.2f ms",
            100 * t / hz / s / c, 100 * (y[6] - x[6]) / hz / s / c, p * ms,
            (y[7] - x[7]) * ms, (y[8] - x[8]) * ms, g * ms, (y[9] - x[9]) * ms, m * ms,
            (t - p - g - m) * ms }'
}

worker_rss() {
    local master
    master=$(cat "$run/nginx.pid")
    ps -o rss= --ppid "$master" | awk '{ s += $1 } END { print s + 0 }'
}

# pg_stat_statements around a short run of its own (PG_PRELOAD only): on,
# with nested statements, and reset; then off, and its top 15 printed
profile_on() {
    psql "$PAY_TEST_PG" -XAtq -c "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" \
        -c "ALTER SYSTEM SET pg_stat_statements.track = 'all'" -c "SELECT pg_reload_conf()" >/dev/null
    sleep 0.5
    psql "$PAY_TEST_PG" -XAtq -c "SELECT pg_stat_statements_reset()" >/dev/null
}
profile_off() {   # profile_off WHAT
    psql "$PAY_TEST_PG" -XAtq -c "ALTER SYSTEM SET pg_stat_statements.track = 'none'" \
        -c "SELECT pg_reload_conf()" >/dev/null
    say "pg_stat_statements over $1 (nested statements included; top 15 by total time):"
    psql "$PAY_TEST_PG" -XAq -P pager=off -c "SELECT calls, round(total_exec_time::numeric, 1) AS total_ms,
        round(mean_exec_time::numeric, 3) AS mean_ms, rows,
        shared_blks_hit + shared_blks_read AS blks, left(regexp_replace(query, '\s+', ' ', 'g'), 90) AS query
        FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = 'payments')
        ORDER BY total_exec_time DESC LIMIT 15" | tee -a "$out"
}

if [ "${PG_DURABLE:-0}" = 1 ]; then
    durability="PostgreSQL durable (fsync, synchronous_commit, full_page_writes on)"
else
    durability="PostgreSQL with fsync, synchronous_commit and full_page_writes off"
fi
say "ngx_payments benchmark, $(date -u), $(nproc) cores, ${secs}s runs, $conns connections, $durability," \
    "database pool $PAY_DB_POOL"
say

# BENCH_PARTS: which steps run (all by default)
parts=" ${BENCH_PARTS:-registrations webhooks reconcile shards limits} "
gw=0 px=0 pg=0
if [[ $parts == *" registrations "* ]]; then
# 1. the gateway
export PAY_KEY=$PAY_TEST_MERCHANT_KEY PAY_PSP=$PAY_TEST_PSP
wrk -t2 -c"$conns" -d3s -s bench/registrations.lua "$PAY_TEST_GW_PLAIN" >/dev/null  # warm-up
rss0=$(worker_rss)
dbw_a=$(dbwait "$PAY_TEST_GW_PLAIN")
cpu_mark gw
wrk -t2 -c"$conns" -d"${secs}s" --latency -s bench/registrations.lua "$PAY_TEST_GW_PLAIN" \
    > "$run/gw.log" 2>&1
cpu_stop
dbw_b=$(dbwait "$PAY_TEST_GW_PLAIN")
gw=$(wrk_rate "$run/gw.log")
say "gateway (plain HTTP)  : $gw registrations/s  $(wrk_tail "$run/gw.log")"
say "    $(cpu_report "$(awk '/requests in/ { print $1 }' "$run/gw.log")")"
say "    $(dbwait_report "$dbw_a" "$dbw_b")"

# 1b. the same registrations with a risk check before each PSP call, the
# provider answering after 20 ms: its cost should be the provider's latency
# (the call waits on the event loop beside the others), not the worker's
# CPU. Judged against the healthy line right before it and one more right
# after it (their mean): the machine's speed moves on the scale of a
# 10-second line, and one healthy line measured on a slow moment put the
# risk-checked line above 1 (bench/RESULTS.md, 2026-12-02)
risk_gw=http://127.0.0.1:${PAY_TEST_GW_LIMITS##*:}
wrk -t2 -c"$conns" -d3s -s bench/registrations.lua "$risk_gw" >/dev/null  # warm-up
dbw_a=$(dbwait "$PAY_TEST_GW_PLAIN")
cpu_mark gw-risk
wrk -t2 -c"$conns" -d"${secs}s" --latency -s bench/registrations.lua "$risk_gw" \
    > "$run/gw-risk.log" 2>&1
cpu_stop
dbw_b=$(dbwait "$PAY_TEST_GW_PLAIN")
wrk -t2 -c"$conns" -d"${secs}s" --latency -s bench/registrations.lua "$PAY_TEST_GW_PLAIN" \
    > "$run/gw-after.log" 2>&1
gw_after=$(wrk_rate "$run/gw-after.log")
gw_mean=$(mean "$gw" "$gw_after")
say "gateway, ${PAY_RISK_LATENCY_MS} ms risk provider: $(wrk_rate "$run/gw-risk.log") registrations/s" \
    "$(wrk_tail "$run/gw-risk.log") (without: $gw/s before, $gw_after/s after, ratio" \
    "$(ratio "$(wrk_rate "$run/gw-risk.log")" "$gw_mean") to their mean)"
say "    $(cpu_report "$(awk '/requests in/ { print $1 }' "$run/gw-risk.log")")"
say "    $(dbwait_report "$dbw_a" "$dbw_b")"

# 1c. routing (payments_route): checkouts sent without "psp", their route's
# PSP chosen by the gateway: healthy (GBP: one PSP), then with the route's
# first PSP down (EUR: its circuit opens at the first refused connection,
# and every registration moves on to the next PSP in the same request),
# then healthy again: the circuit-open line against the two routed lines'
# mean, as the risk line above; the routed lines against the healthy
# unrouted ones' mean, measured right before them
PAY_ROUTE_CURRENCY=GBP wrk -t2 -c"$conns" -d"${secs}s" --latency -s bench/registrations.lua \
    "$PAY_TEST_GW_PLAIN" > "$run/gw-routed.log" 2>&1
PAY_ROUTE_CURRENCY=EUR wrk -t2 -c"$conns" -d"${secs}s" --latency -s bench/registrations.lua \
    "$PAY_TEST_GW_PLAIN" > "$run/gw-route-down.log" 2>&1
PAY_ROUTE_CURRENCY=GBP wrk -t2 -c"$conns" -d"${secs}s" --latency -s bench/registrations.lua \
    "$PAY_TEST_GW_PLAIN" > "$run/gw-routed-after.log" 2>&1
routed_mean=$(mean "$(wrk_rate "$run/gw-routed.log")" "$(wrk_rate "$run/gw-routed-after.log")")
say "gateway, routed       : $(wrk_rate "$run/gw-routed.log") registrations/s" \
    "$(wrk_tail "$run/gw-routed.log"); after the circuit-open line:" \
    "$(wrk_rate "$run/gw-routed-after.log")/s (healthy unrouted: $gw_mean/s, ratio" \
    "$(ratio "$routed_mean" "$gw_mean"))"
say "gateway, routed, the first PSP's circuit open: $(wrk_rate "$run/gw-route-down.log")" \
    "registrations/s $(wrk_tail "$run/gw-route-down.log") (healthy routed:" \
    "$routed_mean/s, ratio $(ratio "$(wrk_rate "$run/gw-route-down.log")" "$routed_mean"))"

wrk -t2 -c"$conns" -d"${secs}s" -s bench/registrations.lua "$PAY_TEST_GW" \
    > "$run/gw-tls.log" 2>&1
say "gateway (TLS)         : $(wrk_rate "$run/gw-tls.log") registrations/s  $(wrk_tail "$run/gw-tls.log")"

# 1d. the PSP failing every second call (503): the gateway's retries
# (backoff with jitter, same nonce) hide it, at some cost; against the
# healthy line's mean
curl -s -X POST "$PAY_TEST_MOCK/_control/faults" \
    -d '{"match":"","fail_every":2,"fail_status":503}' >/dev/null
wrk -t2 -c"$conns" -d"${secs}s" --latency -s bench/registrations.lua "$PAY_TEST_GW_PLAIN" \
    > "$run/gw-half.log" 2>&1
curl -s -X POST "$PAY_TEST_MOCK/_control/reset" >/dev/null
say "gateway, PSP failing half its calls: $(wrk_rate "$run/gw-half.log") registrations/s" \
    "$(wrk_tail "$run/gw-half.log") (healthy: $gw_mean/s, ratio" \
    "$(ratio "$(wrk_rate "$run/gw-half.log")" "$gw_mean"))"

# 2. the peer
mkdir -p "$peer/logs" "$peer/tmp"
cp "$peer_conf/plain_proxy_nginx.conf" "$peer/nginx.conf"
nginx -p "$peer" -c nginx.conf
sleep 0.5
wrk -t2 -c"$conns" -d"${secs}s" -s "$peer_conf/unique_keys.lua" http://127.0.0.1:18080/v1/payments \
    > "$run/peer.log" 2>&1
px=$(wrk_rate "$run/peer.log")
say "plain nginx proxy     : $px requests/s  $(wrk_tail "$run/peer.log")"
say "    p99: the gateway's $(wrk_p99 "$run/gw.log") ms against the proxy's $(wrk_p99 "$run/peer.log") ms," \
    "$(ratio "$(wrk_p99 "$run/gw.log")" "$(wrk_p99 "$run/peer.log")")x"
# 2b. the tail at a quarter of the connections. In a closed loop over a PSP
# that answers in a fixed 200 ms, the connections move in waves, and each
# wave's claims, then its answers, pass the database at its commit rate: at
# 256 connections the slowest 1% waited 55-75 ms for a pool connection
# twice while their queries ran 1 ms (bench/RESULTS.md). At a quarter of
# the connections the waves are a quarter as deep.
qc=$(( conns / 4 ))
wrk -t2 -c"$qc" -d"${secs}s" --latency -s bench/registrations.lua "$PAY_TEST_GW_PLAIN" \
    > "$run/gw-q.log" 2>&1
wrk -t2 -c"$qc" -d"${secs}s" -s "$peer_conf/unique_keys.lua" http://127.0.0.1:18080/v1/payments \
    > "$run/peer-q.log" 2>&1
say "at $qc connections: gateway $(wrk_rate "$run/gw-q.log") registrations/s $(wrk_tail "$run/gw-q.log");" \
    "proxy $(wrk_rate "$run/peer-q.log") requests/s $(wrk_tail "$run/peer-q.log");" \
    "ratio $(ratio "$(wrk_rate "$run/gw-q.log")" "$(wrk_rate "$run/peer-q.log")"), p99" \
    "$(ratio "$(wrk_p99 "$run/gw-q.log")" "$(wrk_p99 "$run/peer-q.log")")x"
kill -QUIT "$(cat "$peer/nginx.pid")"
rm -f "$peer/nginx.pid"

# 3. pgbench with the gateway's SQL, on the same database, between two runs
# of the rows a registration writes, in plain SQL (bench/rows_floor/
# reg_rows.sql: the same rows, columns and indexes, 3 statements, 2
# commits), in database reg_floor of the same cluster: the gateway's SQL
# judged against the floor's mean, so that the machine's drift within the
# run weighs on both sides.  A single floor run after the gateway's moved
# by half between runs (2,324 and 4,048/s in one sitting; 2,333 before and
# 4,352/s after the gateway's in one run), and a new database's first
# seconds ran at half the rate of the next (2,296 then 4,249/s on a
# scratch cluster): the floor is warmed up first, uncounted, and each of
# the three starts right after a checkpoint, so that none meets one's
# full-page images and another not.
kid=${PAY_TEST_MERCHANT_KEY#mk_test_}
kid=${kid%%_*}
db=${PAY_TEST_PG% user=*}
reg_db=${PAY_TEST_PG/dbname=payments/dbname=reg_floor}
psql "${PAY_TEST_PG/dbname=payments/dbname=postgres}" -XAtq \
    -c "DROP DATABASE IF EXISTS reg_floor" -c "CREATE DATABASE reg_floor"
psql "$reg_db" -XAtq -v ON_ERROR_STOP=1 -f bench/rows_floor/reg_schema.sql >/dev/null
checkpoint() {
    psql "${PAY_TEST_PG/dbname=payments/dbname=postgres}" -XAtq -c CHECKPOINT
}
reg_rows() {   # reg_rows NAME SECONDS: pgbench on reg_rows.sql; sets regrows
    checkpoint
    pgbench -n -M prepared -c 8 -j 2 -T "$2" -f bench/rows_floor/reg_rows.sql "$reg_db" \
        > "$run/$1.log" 2>&1
    regrows=$(awk '/^tps = / { printf "%.0f", $3; exit }' "$run/$1.log")
}
reg_rows reg-rows-warm 3
reg_rows reg-rows-a "$secs"; rra=$regrows
checkpoint
pgbench -n -M prepared -c 8 -j 2 -T "$secs" -U payments_gateway -D key_id="$kid" \
    -f bench/registration.pgbench "$db" > "$run/pgbench.log" 2>&1
pg=$(awk '/^tps = / { print $3; exit }' "$run/pgbench.log")
reg_rows reg-rows-b "$secs"; rrb=$regrows
regrows=$(( (rra + rrb) / 2 ))
say "pgbench (same SQL, 8 clients): $pg registrations/s"
say "the same rows in plain SQL, rows_floor/reg_rows.sql (8 clients): $rra/s before," \
    "$rrb/s after (mean $regrows/s); the gateway's SQL at $(ratio "$pg" "$regrows") of it"
# where a registration's database time goes: the same pgbench for 3 s more
# with pg_stat_statements tracking nested statements (not measured above:
# the tracking costs time)
if [ -n "${PG_PRELOAD:-}" ]; then
    profile_on
    pgbench -n -M prepared -c 8 -j 2 -T 3 -U payments_gateway -D key_id="$kid" \
        -f bench/registration.pgbench "$db" > "$run/pgbench-profile.log" 2>&1
    profile_off "pgbench's registrations, 3 s, 8 clients ($(awk '/^tps = / { print $3; exit }' \
        "$run/pgbench-profile.log")/s tracked)"
fi
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

fi

if [[ $parts == *" webhooks "* ]]; then
# 5. webhooks
nwh=${BENCH_WEBHOOKS:-50000}
# pg_stat_statements stays out of the measured runs (track = none)
if [ -n "${PG_PRELOAD:-}" ]; then
    psql "$PAY_TEST_PG" -XAtq -c "ALTER SYSTEM SET pg_stat_statements.track = 'none'" \
        -c "SELECT pg_reload_conf()" >/dev/null
fi
tag=$(date +%s)
# prepare, index and sign: bench/lib.sh's wh_* (bench/shards.sh's too)
wh_tools
prepare() { wh_prepare "$PAY_TEST_PG" "$@"; }
index_tokens() { wh_index "$PAY_TEST_PG" "$1"; }
sign() { wh_sign "$2" "$PAY_TEST_PG" "$1"; }
paid() { wh_paid "$PAY_TEST_PG" "$1"; }
# webhooks NAME LIKE: wrk at 64 connections on the signed events of LIKE;
# sets wh_rate (unique events committed per second, counted in the database)
# and wh_cpu (where the cores went meanwhile, per event committed)
webhooks() {
    cpu_mark
    EVENTS=$run/$1.tsv wrk -t2 -c64 -d"${secs}s" --latency -s bench/webhooks.lua \
        "$PAY_TEST_GW_PLAIN" > "$run/$1.log" 2>&1
    cpu_stop
    local n span
    read -r n span < <(psql "$PAY_TEST_PG" -XAtq -F ' ' -c "SELECT count(*),
        coalesce(extract(epoch FROM max(updated_at) - min(updated_at)), 0)
        FROM checkouts WHERE checkout_id LIKE '$2' AND status = 'SUCCESS'")
    wh_rate=$(awk -v n="$n" -v s="$secs" 'BEGIN { printf "%.0f", n / s }')
    wh_cpu=$(cpu_report "$n")
    wh_tail=$(wrk_tail "$run/$1.log")
    wh_sent=$(awk '/requests in/ { print $1 }' "$run/$1.log")
    wh_events=$(wc -l < "$run/$1.tsv")
    settle "$PAY_TEST_PG"
    wh_short=""
    if [ "$n" -ge "$wh_events" ]; then
        # Every event was committed before the run ended: n / secs would be
        # the supply, not the gateway's rate.  The rate is then taken over
        # the span the events were committed in, and the figures that
        # include the duplicates sent after are marked.
        wh_rate=$(awk -v n="$n" -v s="$span" 'BEGIN { printf "%.0f", s > 0 ? (n - 1) / s : 0 }')
        wh_short=$(awk -v n="$n" -v s="$span" -v d="$secs" 'BEGIN { printf " RAN OUT: all %d events" \
            " committed in %.1f s of %d s, rate over that span; latencies and CPU include" \
            " the duplicates sent after (raise BENCH_WEBHOOKS)", n, s, d }')
        echo "bench/run.sh: webhooks $1: all $n events were committed before the run ended (raise BENCH_WEBHOOKS)" >&2
    fi
}

# the floor: bench/peer/db_floor/ in its own database of the same cluster
floor_db=${PAY_TEST_PG/dbname=payments/dbname=bench_floor}
psql "${PAY_TEST_PG/dbname=payments/dbname=postgres}" -XAtq -v ON_ERROR_STOP=1 \
    -c "DROP DATABASE IF EXISTS bench_floor" -c "CREATE DATABASE bench_floor"
psql "$floor_db" -XAtq -v ON_ERROR_STOP=1 -f bench/peer/db_floor/schema.sql >/dev/null
floor() {   # floor FILE NAME: pgbench as db_floor/README.md says; sets fl_rate
    pgbench -n -M prepared -j2 -c8 -T "$secs" -f "bench/peer/db_floor/$1" "$floor_db" \
        > "$run/$2.log" 2>&1
    fl_rate=$(awk '/^tps = / { printf "%.0f", $3; exit }' "$run/$2.log")
    settle "$floor_db"
}
# the rows a paid two-order webhook writes, in plain SQL (bench/rows_floor/),
# in database rows_floor of the same cluster
rows_db=${PAY_TEST_PG/dbname=payments/dbname=rows_floor}
psql "${PAY_TEST_PG/dbname=payments/dbname=postgres}" -XAtq -v ON_ERROR_STOP=1 \
    -c "DROP DATABASE IF EXISTS rows_floor" -c "CREATE DATABASE rows_floor"
psql "$rows_db" -XAtq -v ON_ERROR_STOP=1 -f bench/rows_floor/schema.sql >/dev/null
rows_floor() {   # rows_floor NAME: pgbench on hook_rows.sql as floor() runs; sets fl_rate
    pgbench -n -M prepared -j2 -c8 -T "$secs" -f bench/rows_floor/hook_rows.sql "$rows_db" \
        > "$run/$1.log" 2>&1
    fl_rate=$(awk '/^tps = / { printf "%.0f", $3; exit }' "$run/$1.log")
    settle "$rows_db"
}

# merchants: the demo merchant (1 merchant), bench_w1..4 (4 merchants); each
# side pays the same number of checkouts, every checkout two orders for
# seller_1 and seller_2 (a merchant's events share those wallet rows)
for i in 1 2 3 4; do
    outp=$(bin/payments-merchant --db "$PAY_TEST_PG" create --id "bench_w$i" --name "bench_w$i" \
        --origin https://shop.example 2>&1) ||
        grep -q "exists" <<<"$outp" ||
        { echo "bench/run.sh: payments-merchant create bench_w$i failed: $outp" >&2; exit 1; }
done
prepare "$PAY_TEST_MERCHANT_ID" "wa$tag" "$nwh"
per4=$(( (nwh + 3) / 4 ))
for i in 1 2 3 4; do prepare "bench_w$i" "wb${tag}m$i" "$per4"; done
index_tokens "wa${tag}x%"
index_tokens "wb${tag}m%"
sign "wa${tag}x%" "$run/wh1.tsv"
sign "wb${tag}m%" "$run/wh4.tsv"
# The registrations above and the checkouts just prepared are over 100,000
# inserts: autovacuum would take them on during the first measured run (it
# did: 1 merchant at 0.72 of 4 merchants after the registrations, 1.05
# without them) and charge that run for it.  Vacuum them now, and after
# every measured step below the database it wrote (settle): each step is
# charged for its own writes only.  Only the tables that hold rows: a table
# vacuumed empty is planned as empty, and the gateway's connections kept
# the plans they made early in the run (a sequential scan of the ledger for
# each balance check and each foreign key's: 1 merchant at 435 webhooks/s).
settle "$PAY_TEST_PG" "(ANALYZE)"

# interleaved, in one run: the floor, 1 merchant, 4 merchants, the floor again
floor hook.sql floor-hook-a; fa=$fl_rate
rows_floor floor-rows-a; ra=$fl_rate
webhooks wh1 "wa${tag}x%"
w1=$wh_rate; w1t=$wh_tail; w1s=$wh_sent; w1e=$wh_events; w1c=$wh_cpu; w1x=$wh_short
webhooks wh4 "wb${tag}m%"
w4=$wh_rate; w4t=$wh_tail; w4s=$wh_sent; w4e=$wh_events; w4c=$wh_cpu; w4x=$wh_short
# what the gateway made of the events of both runs, by merchant
psql "$PAY_TEST_PG" -XAtq -F ' ' -c "SELECT 'events of ' || coalesce(merchant_id, '(none)') || ': ' ||
    string_agg(outcome || ' ' || n, ', ' ORDER BY outcome) FROM (SELECT merchant_id, coalesce(outcome, '?') AS outcome,
    count(*) AS n FROM webhook_events GROUP BY 1, 2) x GROUP BY merchant_id ORDER BY 1" | tee -a "$out"
floor hook.sql floor-hook-b; fb=$fl_rate
rows_floor floor-rows-b; rb=$fl_rate
floor reg.sql floor-reg; freg=$fl_rate
fl=$(awk -v a="$fa" -v b="$fb" 'BEGIN { printf "%.0f", (a + b) / 2 }')
rfl=$(awk -v a="$ra" -v b="$rb" 'BEGIN { printf "%.0f", (a + b) / 2 }')
say "webhooks, 64 connections, unique events committed per second (counted in the database):"
say "  1 merchant  : $w1/s  $w1t ($w1s sent for $w1e unique events)$w1x"
say "    $w1c"
say "  4 merchants : $w4/s  $w4t ($w4s sent for $w4e unique events)$w4x"
say "    $w4c"
say "  db_floor hook.sql (8 clients): $fa/s before, $fb/s after (mean $fl/s)"
say "  the same rows in plain SQL, rows_floor/hook_rows.sql (8 clients): $ra/s before, $rb/s after" \
    "(mean $rfl/s; $(ratio "$rfl" "$fl") of hook.sql)"
say "  ratios to the rows: 1 merchant/rows = $(ratio "$w1" "$rfl"), 4 merchants/rows = $(ratio "$w4" "$rfl")"
say "  ratios: 1 merchant/floor = $(ratio "$w1" "$fl"), 4 merchants/floor = $(ratio "$w4" "$fl")," \
    "1 merchant/4 merchants = $(ratio "$w1" "$w4")"
say "registrations: db_floor reg.sql (8 clients) $freg/s; gateway's SQL (pgbench, above) $pg/s" \
    "= $(ratio "$pg" "$freg") of it; gateway/proxy = $(ratio "$gw" "$px")"
# the profile: pg_stat_statements with nested statements (track = all) over
# a short 1-merchant run of its own, after the measured runs (the tracking
# costs time)
if [ -n "${PG_PRELOAD:-}" ]; then
    prepare "$PAY_TEST_MERCHANT_ID" "wr$tag" 12000
    index_tokens "wr${tag}x%"
    sign "wr${tag}x%" "$run/whp.tsv"
    profile_on
    EVENTS=$run/whp.tsv wrk -t2 -c64 -d3s -s bench/webhooks.lua "$PAY_TEST_GW_PLAIN" \
        > "$run/whp.log" 2>&1
    profile_off "3 s of 1-merchant webhooks ($(paid "wr${tag}x%") applied)"
fi

prepare "$PAY_TEST_MERCHANT_ID" "wp$tag" $(( nwh / 2 ))
# keyed as the gateway's own (wh_index), each checkout's event with the
# values the gateway sends to pay_event_keep (wh_queue)
index_tokens "wp${tag}x%"
wh_queue "$PAY_TEST_PG" "wp${tag}x%"
# a fixed count (each client its share of the queue), not -T: a client that
# ran past the queue's end would abort and fail the run
pgbench -n -M prepared -c 8 -j 2 -t $(( nwh / 2 / 8 )) -D per=$(( nwh / 2 / 8 )) -D pass=1 \
    -D n=0 -D clients=8 -f bench/webhook.pgbench \
    "$PAY_TEST_PG" > "$run/pgbench-webhooks.log" 2>&1
pgw=$(awk '/^tps = / { print $3; exit }' "$run/pgbench-webhooks.log")
say "pgbench (the gateway's webhook txn, 1 merchant, 8 clients): $pgw webhooks/s;" \
    "gateway (1 merchant)/pgbench = $(ratio "$w1" "$pgw")"
psql "$PAY_TEST_PG" -XAtq -c "SELECT 'ledger: ' || count(*) || ' transactions, ' ||
    count(*) FILTER (WHERE s <> 0) || ' unbalanced' FROM (SELECT sum(amount) s
    FROM ledger_entries GROUP BY merchant_id, txn_id, currency) x" | tee -a "$out"
psql "$PAY_TEST_PG" -XAtq -c "SELECT pay_wallets_fold(1000000)" >/dev/null
psql "$PAY_TEST_PG" -XAtq -c "SELECT 'wallets: ' || count(*) || ', ' ||
    count(*) FILTER (WHERE w.balance IS DISTINCT FROM l.total) || ' off the ledger'
    FROM wallets w FULL JOIN (SELECT merchant_id, substr(account, 16) AS seller, currency,
                                     -sum(amount) AS total FROM ledger_entries
                               WHERE account LIKE 'seller\\_payable:%' GROUP BY 1, 2, 3) l
      ON l.merchant_id = w.merchant_id AND l.seller = w.seller_account AND l.currency = w.currency" \
    | tee -a "$out"
# every paid checkout has its payment reference and its psp_payments row
psql "$PAY_TEST_PG" -XAtq -c "SELECT 'payment references: ' || count(*) || ' paid checkouts, ' ||
    count(*) FILTER (WHERE c.psp_payment_ref IS NULL OR p.checkout_id IS NULL) || ' without'
    FROM checkouts c LEFT JOIN psp_payments p ON p.psp = c.psp
         AND p.payment_ref = c.psp_payment_ref AND p.merchant_id = c.merchant_id
         AND p.checkout_id = c.checkout_id
   WHERE c.status = 'SUCCESS'" | tee -a "$out"
psql "$PAY_TEST_PG" -XAtq -c "SELECT 'audit chains: ' || count(*) FILTER (WHERE pay_audit_verify(m)) ||
    ' of ' || count(*) || ' verify' FROM (SELECT DISTINCT merchant_id m FROM audit_log) x" | tee -a "$out"

fi

if [[ $parts == *" reconcile "* ]]; then
# 6. reconciliation: rows reconciled per second on a 20,000-row report
#    (bench/reconcile.sh, its own throwaway database)
say "$(bash bench/reconcile.sh "${BENCH_RECON_ROWS:-20000}" | tail -n 1)"
fi

# 7. and 8.: stacks of their own, their lines appended to this run's results
if [[ $parts == *" shards "* ]]; then
    say
    BENCH_OUT=$out bash bench/shards.sh > "$run/shards.log" 2>&1 ||
        { tail -20 "$run/shards.log" >&2; exit 1; }
fi
if [[ $parts == *" limits "* ]]; then
    say
    BENCH_OUT=$out bash bench/limits.sh > "$run/limits.log" 2>&1 ||
        { tail -20 "$run/limits.log" >&2; exit 1; }
fi

say
say "results: $out"
grep -E '\[(alert|crit|emerg)\]' "$run/logs/error.log" | head -5 | tee -a "$out" || true
