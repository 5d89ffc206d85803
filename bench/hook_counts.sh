#!/usr/bin/env bash
# `make bench-hook-counts`: what one verified webhook costs the database, in
# counts that do not depend on how busy the machine is (bench/README.md):
#
#   bash bench/hook_counts.sh [N]         N webhooks (default 2000)
#
# As bench/reg_counts.sh does for a registration: a throwaway durable
# cluster (fsync, synchronous_commit, full_page_writes on;
# pg_stat_statements tracking nested statements), the tree's migrations, a
# merchant with 2N registered, unpaid checkouts of two orders each (bench/
# lib.sh's wh_prepare, the gateway's own functions; their tokens' rows
# keyed by a blind index, as a gateway with a key file keeps them); then,
# each after a checkpoint, a warm-up of N and with every statistic reset:
#   - the gateway's SQL: N runs of bench/webhook.pgbench (pay_event_keep
#     with the 14 values the gateway sends for a paid Stripe
#     checkout.session.completed: body, headers and key id included), each
#     paying another checkout, by COUNTS_CLIENTS (8) pgbench clients with
#     prepared statements, as the gateway's role; the script's read of its
#     prepared event (bench_webhook_queue) is counted out;
#   - the rows floor: N runs of bench/rows_floor/hook_rows.sql (the same 21
#     rows in plain SQL) in database rows_floor of the same cluster.
# Per webhook the columns of reg_counts.sh; COUNTS_TOP=1 lists the gateway's
# statements, nested ones included, by blocks.  COUNTS_TREE=DIR measures
# another checkout of this repository (its migrations, payments-merchant,
# bench/lib.sh and webhook.pgbench; the floor is this tree's), for a before
# and after; COUNTS_CLIENTS and COUNTS_SETTINGS as in reg_counts.sh.
# COUNTS_KEEP=1 leaves the cluster running at the end (its conninfo and
# how to stop it on stderr), to look further (auto_explain, EXPLAIN).
# Results are appended to bench/results/counts-<time>.txt.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
tree=$(cd "${COUNTS_TREE:-$top}" && pwd)
n=${1:-2000}
clients=${COUNTS_CLIENTS:-8}

# wh_prepare, wh_queue: the tree's
# shellcheck source=bench/lib.sh
. "$tree/bench/lib.sh"
# the cluster, sample and measure: bench/counts_lib.sh; planning tracked
# too: a statement planned at every call (a SQL function's, say) is CPU the
# blocks do not show
# shellcheck source=bench/counts_lib.sh
. "$top/bench/counts_lib.sh"
counts_setup pg_stat_statements.track_planning=on

# COUNTS_INBOX_MONTHS=K: the inbox (psp_events) with K monthly partitions,
# as a gateway keeping 13 months has 15 (the current one made ahead,
# inbox_months=13 kept behind it); these are made ahead, empty (an old
# month's index is a level deeper).  Default: what a fresh cluster has.
if [ -n "${COUNTS_INBOX_MONTHS:-}" ]; then
    psql "$su" -XAtq -v ON_ERROR_STOP=1 -c "SELECT pay_inbox_partitions($(( COUNTS_INBOX_MONTHS - 1 )))" >/dev/null
fi
"$tree/bin/payments-merchant" --db "$su" create --id bench --origin https://shop.example >/dev/null
# the first clients count's share rounds down: 2 passes of c * (n / c) each
per_max=$(( n / ${clients%% *} ))
wh_prepare "$su" bench hk $(( 2 * per_max * ${clients%% *} ))
# each token's row keyed by its blind index (any 64 hex digits: the
# database only looks it up), the index first among the event's candidates
psql "$su" -XAtq -v ON_ERROR_STOP=1 -c "UPDATE psp_tokens
    SET psp_token = encode(sha256(convert_to('psp_token:stripe ' || psp_token, 'UTF8')), 'hex')
    WHERE merchant_id = 'bench' AND checkout_id LIKE 'hkx%'" -c "VACUUM ANALYZE"
wh_queue "$su" 'hkx%'
psql "${su/dbname=payments/dbname=postgres}" -XAtq -c "CREATE DATABASE rows_floor"
psql "$floor" -XAtq -v ON_ERROR_STOP=1 -f "$top/bench/rows_floor/schema.sql" >/dev/null

counts_title webhook webhooks

counts_table
for c in $clients; do
    # the queue read: the harness's
    COUNTS_HARNESS='bench_webhook_queue' \
        measure "gateway (webhook.pgbench, pay_event_keep)" "$db" "$tree/bench/webhook.pgbench" "$c" \
        -U payments_gateway -D n=0 -D per=$(( n / c )) -D clients="$c"
    say "$(psql "$su" -XAtq -c "
        SELECT 'gateway, per webhook: ' || round(sum(plans)::numeric / $n, 2) ||
               ' statements planned (nested too; each connection plans a statement' ||
               ' 5 times before its generic plan), ' ||
               round(sum(calls) FILTER (WHERE toplevel AND query ~ 'pay_event_keep')::numeric / $n, 2) ||
               ' round trips (the others counted top-level are the deferred triggers'' at commit)'
          FROM pg_stat_statements
         WHERE dbid = (SELECT oid FROM pg_database WHERE datname = 'payments')
           AND query !~* '^(select pg_stat|checkpoint)' AND query !~ 'bench_webhook_queue'")"
    if [ "${COUNTS_TOP:-0}" = 1 ]; then
        psql "$su" -XAq -P pager=off -P footer=off -c "
            SELECT round(calls::numeric / $n, 1) AS per_event, round(plans::numeric / $n, 2) AS plans,
                   toplevel AS top,
                   round((shared_blks_hit + shared_blks_read)::numeric / $n, 1) AS blocks,
                   round(total_exec_time::numeric / greatest(calls, 1), 3) AS ms,
                   round(wal_records::numeric / $n, 1) AS wal_recs, round(wal_bytes / $n) AS wal_bytes,
                   left(regexp_replace(query, '\s+', ' ', 'g'), 90) AS query
              FROM pg_stat_statements
             WHERE dbid = (SELECT oid FROM pg_database WHERE datname = 'payments')
               AND query !~* '^(select pg_stat|checkpoint)' AND query !~ 'bench_webhook_queue'
               AND query !~* 'pg_stat_statements'
               -- the statements of a webhook (PL/pgSQL's expressions too, when
               -- planned at every call)
               AND (calls >= $n / 2 OR plans >= $n / 2)
             ORDER BY toplevel DESC, shared_blks_hit + shared_blks_read DESC" | tee -a "$out"
    fi
    if [ "$c" != "${clients%% *}" ]; then
        echo "bench/hook_counts.sh: one clients count at a time (the checkouts are prepared for the first)" >&2
        break
    fi
done
measure "rows floor (rows_floor/hook_rows.sql)" "$floor" "$top/bench/rows_floor/hook_rows.sql" \
    "${clients##* }"
say
say "(counts from pg_stat_statements, pg_stat_wal and pg_stat_database over the measured run;" \
    "blocks are the top-level statements' with their nested ones; waits: share of samples of" \
    "the clients' active backends; the script's read of its prepared event counts in no column)"
if [ -n "${COUNTS_KEEP:-}" ]; then
    echo "cluster kept: $su (stop: bash ci/pg.sh stop $pgdir)" >&2
    trap - EXIT
fi
