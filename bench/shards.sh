#!/usr/bin/env bash
# `make bench-shards` (and make bench's part "shards"): webhooks with their
# merchants on two shards against the same webhooks with every merchant on
# one shard, one gateway in front (bench/README.md, "Merchant shards").
#   A stack of its own: two PostgreSQL clusters, shards a (the home) and b
#   (ci/services.sh --shards 2), one nginx worker serving both with
#   `payments_shard` lines (bench/nginx.conf.in), the pool per shard as
#   make bench's.  Four merchants on a (bench_a1..4) and two on b
#   (bench_b1, bench_b2).
#   1. one shard: the paying events of bench_a1..4's checkouts, 64
#      connections for BENCH_SECONDS;
#   2. two shards: the paying events of bench_a1, bench_a2, bench_b1 and
#      bench_b2's checkouts (as many merchants, half on each shard),
#      interleaved; then run 1 again on checkouts of its own (the ratio
#      takes the mean of both: the spread between them is the noise);
#   3. one shard with a synchronous standby: run 1 again (its own
#      checkouts) after shard a gained a streaming standby it commits to
#      synchronously (ci/pg.sh standby, as doc/OPERATIONS.md's fail-over
#      asks), with the standby's CPU per event: what a shard's standby
#      costs;
#   each with every shard's events committed per second (counted in that
#   shard), its PostgreSQL's CPU per event, and the transactions each shard
#   wrote (in run 1, shard b's are its background work only, as in the
#   idle seconds measured first: nothing crossed); then, over both runs,
#   every table of each shard searched for the other shard's merchants
#   (none may be there).
# On two cores the sum cannot double: both clusters, the worker and wrk
# share the cores.  What a shard costs is its CPU per event.
# Environment: BENCH_SECONDS (10), BENCH_WEBHOOKS (40000 checkouts for each
# run), BENCH_DB_POOL, PG_DURABLE (1) as bench/run.sh; BENCH_OUT: a file
# the results are appended to as well (bench/run.sh's).
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
secs=${BENCH_SECONDS:-10}
nwh=${BENCH_WEBHOOKS:-40000}
export PG_DURABLE=${PG_DURABLE:-1}

if [ -z "${BENCH_OUT:-}" ]; then
    bash ci/install-deps.sh
    make -s module mock
fi

run=$(mktemp -d /tmp/ngx-payments-bench-shards.XXXXXX)
chmod 755 "$run"
cleanup() {
    local rc=$?
    bash ci/pg.sh stop "$run/standby" 2>/dev/null || true
    bash ci/services.sh finish "$run" "$rc" bench/shards.sh
}
trap cleanup EXIT

export PAY_DB_POOL=${BENCH_DB_POOL:-$(( $(nproc) + 1 ))}
export PAY_RISK_LATENCY_MS=${BENCH_RISK_LATENCY_MS:-20}
bash ci/services.sh start "$run" --template bench/nginx.conf.in --lease 30s \
    --mock-latency 200 --workers 1 --shards 2
# shellcheck disable=SC1091
. "$run/env"
# shellcheck source=bench/lib.sh
. bench/lib.sh

out=${BENCH_OUT:-$top/bench/results/$(date -u +%Y%m%dT%H%M%SZ)-shards.txt}
mkdir -p "$(dirname "$out")"
say() { echo "$*" | tee -a "$out"; }

pg_a=$PAY_TEST_PG1 pg_b=$PAY_TEST_PG2

# xids DB: the cluster's next transaction id, without taking one: its
# growth over a run counts the transactions that wrote (pg_stat_database's
# commit counts come up to 10 s late, as the backends flush them)
xids() {
    psql "$1" -XAtq -c "SELECT pg_snapshot_xmax(pg_current_snapshot())"
}
# the CPU of the two clusters (each postmaster with its backends), of
# nginx and of shard a's standby (run 3), the machine's, and the clock,
# now: "a b nginx standby busy ns"
shard_ticks() {
    local sb=-
    [ ! -f "$run/standby/data/postmaster.pid" ] || sb=$(head -1 "$run/standby/data/postmaster.pid")
    echo "$(ticks "$(head -1 "$PAY_TEST_PGDATA1/postmaster.pid")" \
                  "$(head -1 "$PAY_TEST_PGDATA2/postmaster.pid")" \
                  "$(cat "$run/nginx.pid")" "$sb") $(busy) $(date +%s%N)"
}
# per_event TICKS N: milliseconds of CPU per event
per_event() {
    awk -v t="$1" -v n="$2" -v hz="$(getconf CLK_TCK)" \
        'BEGIN { if (n > 0) printf "%.2f", t * 1000 / hz / n; else printf "n/a" }'
}

for m in a1 a2 a3 a4 b1 b2; do
    outp=$(bin/payments-merchant --shards "$PAY_TEST_SHARDS_FILE" --shard "${m:0:1}" \
        create --id "bench_$m" --name "bench_$m" --origin https://shop.example 2>&1) ||
        { echo "bench/shards.sh: payments-merchant create bench_$m failed: $outp" >&2; exit 1; }
done

tag=$(date +%s)
wh_tools
per=$(( nwh / 4 ))
# run 1's checkouts: bench_a1..4 on a; run 2's: bench_a1, a2 on a, b1, b2 on b
for m in a1 a2 a3 a4; do wh_prepare "$pg_a" "bench_$m" "s1${tag}$m" "$per"; done
for m in a1 a2; do wh_prepare "$pg_a" "bench_$m" "s2${tag}$m" "$per"; done
for m in b1 b2; do wh_prepare "$pg_b" "bench_$m" "s2${tag}$m" "$per"; done
# run 1 again, and run 3's: bench_a1..4 on a (3: once a has its standby)
for m in a1 a2 a3 a4; do wh_prepare "$pg_a" "bench_$m" "s4${tag}$m" "$per"; done
for m in a1 a2 a3 a4; do wh_prepare "$pg_a" "bench_$m" "s3${tag}$m" "$per"; done
wh_index "$pg_a" "s_${tag}%"
wh_index "$pg_b" "s_${tag}%"
wh_sign "$run/one.tsv" "$pg_a" "s1${tag}%"
wh_sign "$run/two.tsv" "$pg_a" "s2${tag}%" "$pg_b" "s2${tag}%"
wh_sign "$run/again.tsv" "$pg_a" "s4${tag}%"
wh_sign "$run/standby.tsv" "$pg_a" "s3${tag}%"
settle "$pg_a" "(ANALYZE)"
settle "$pg_b" "(ANALYZE)"

# shard_run NAME N: 64 connections on NAME.tsv's events (run N's checkouts,
# s<N><tag>...); prints the lines of
# each shard and sets run_total (events committed per second, both shards)
shard_run() {
    local name=$1 c0a c0b c1a c1b t0 t1 na nb ta tb tn tsb tbusy wall
    c0a=$(xids "$pg_a") c0b=$(xids "$pg_b") t0=$(shard_ticks)
    EVENTS=$run/$name.tsv wrk -t2 -c64 -d"${secs}s" --latency -s bench/webhooks.lua \
        "$PAY_TEST_GW_PLAIN" > "$run/$name.log" 2>&1
    t1=$(shard_ticks) c1a=$(xids "$pg_a") c1b=$(xids "$pg_b")
    na=$(wh_paid "$pg_a" "s${2}${tag}%") nb=$(wh_paid "$pg_b" "s${2}${tag}%")
    read -r ta tb tn tsb tbusy wall < <(awk -v a="$t0" -v b="$t1" 'BEGIN {
        split(a, x, " "); split(b, y, " ")
        print y[1] - x[1], y[2] - x[2], y[3] - x[3], y[4] - x[4], y[5] - x[5], (y[6] - x[6]) / 1e9 }')
    run_total=$(( (na + nb) / secs ))
    say "  $name: $run_total events/s in all  $(wrk_tail "$run/$name.log")" \
        "($(awk '/requests in/ { print $1 }' "$run/$name.log") sent for $(wc -l < "$run/$name.tsv") unique events)"
    say "    shard a: $(( na / secs ))/s, $(( c1a - c0a )) transactions written, PostgreSQL $(per_event "$ta" "$na") ms per event" \
        "($(per_event "$ta" $(( na + nb ))) ms per event of both)"
    say "    shard b: $(( nb / secs ))/s, $(( c1b - c0b )) transactions written, PostgreSQL $(per_event "$tb" "$nb") ms per event" \
        "($(per_event "$tb" $(( na + nb ))) ms per event of both)"
    [ "$tsb" = 0 ] ||
        say "    shard a's standby: PostgreSQL $(per_event "$tsb" "$na") ms per event"
    say "    nginx $(per_event "$tn" $(( na + nb ))) ms per event; cores" \
        "$(awk -v t="$tbusy" -v s="$wall" -v hz="$(getconf CLK_TCK)" -v c="$(nproc)" \
            'BEGIN { printf "%d", 100 * t / hz / s / c }')% busy"
    if [ $(( na + nb )) -ge "$(wc -l < "$run/$name.tsv")" ]; then
        say "    RAN OUT: every event was committed before the run ended (raise BENCH_WEBHOOKS)"
    fi
    settle "$pg_a"
    settle "$pg_b"
}

if [ "${PG_DURABLE:-0}" = 1 ]; then
    durability="durable (fsync, synchronous_commit, full_page_writes on)"
else
    durability="fsync, synchronous_commit and full_page_writes off"
fi
say "merchant shards, $(date -u), $(nproc) cores, ${secs}s runs, 64 connections, one nginx worker," \
    "two PostgreSQL clusters $durability, database pool $PAY_DB_POOL per shard"
# what each shard writes with no events at all: the background work
c0a=$(xids "$pg_a") c0b=$(xids "$pg_b")
sleep "$secs"
say "  idle ${secs} s: shard a $(( $(xids "$pg_a") - c0a )) transactions written, shard b" \
    "$(( $(xids "$pg_b") - c0b )) (background work: the sweeper's lease, housekeeping)"
shard_run one 1
one=$run_total
shard_run two 2
two=$run_total
shard_run again 4
one=$(( (one + run_total) / 2 ))
say "  two shards / one shard = $(ratio "$two" "$one") (one shard: the mean of both runs, $one/s)"
# 3. shard a with a synchronous standby (its primary waits for it)
sb_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
bash ci/pg.sh standby "$run/standby" "$sb_port" "$PAY_TEST_PGDIR1" >/dev/null
sleep 1
shard_run standby 3
say "  one shard with a synchronous standby / without = $(ratio "$run_total" "$one")"
# the standby goes: the primary commits on its own again
psql "$pg_a" -XAtq -c "ALTER SYSTEM RESET synchronous_standby_names" \
    -c "SELECT pg_reload_conf()" >/dev/null
bash ci/pg.sh stop "$run/standby"

# nothing of a merchant on the shard it does not live on: every table with
# a merchant_id column, on each shard, searched for the other's merchants
crossed() {   # crossed DB MERCHANTS: "table n" for each table holding them
    psql "$1" -XAtq -c "SELECT coalesce(string_agg(t || ' ' || n, ', '), 'none')
        FROM (SELECT c.table_name AS t,
                     (xpath('/row/n/text()', query_to_xml(format(
                        'SELECT count(*) AS n FROM %I WHERE merchant_id = ANY (%L)',
                        c.table_name, '{$2}'), false, true, '')))[1]::text::int AS n
                FROM information_schema.columns c
                JOIN pg_class k ON k.relname = c.table_name AND k.relkind IN ('r', 'p')
                JOIN pg_namespace s ON s.oid = k.relnamespace AND s.nspname = c.table_schema
               WHERE c.table_schema = 'public' AND c.column_name = 'merchant_id') x
       WHERE n > 0"
}
say "  shard a's rows of b's merchants: $(crossed "$pg_a" bench_b1,bench_b2);" \
    "shard b's rows of a's merchants: $(crossed "$pg_b" bench_a1,bench_a2,bench_a3,bench_a4,demo)"
for db in "$pg_a" "$pg_b"; do
    say "  shard $([ "$db" = "$pg_a" ] && echo a || echo b): $(psql "$db" -XAtq -c "SELECT
        'ledger ' || count(*) || ' transactions, ' || count(*) FILTER (WHERE s <> 0) || ' unbalanced'
        FROM (SELECT sum(amount) s FROM ledger_entries GROUP BY merchant_id, txn_id, currency) x");" \
        "$(psql "$db" -XAtq -c "SELECT 'audit chains ' || count(*) FILTER (WHERE pay_audit_verify(m)) ||
        ' of ' || count(*) || ' verify' FROM (SELECT DISTINCT merchant_id m FROM audit_log) x")"
done
say "results: $out"
