#!/usr/bin/env bash
# `make bench-counts`: what one registration costs the database, in counts
# that do not depend on how busy the machine is (bench/README.md):
#
#   bash bench/reg_counts.sh [N]          N registrations (default 2000)
#
# A throwaway durable cluster (fsync, synchronous_commit, full_page_writes
# on; pg_stat_statements tracking nested statements), the tree's migrations,
# a merchant; then, each after a checkpoint, a warm-up of N and with every
# statistic reset (no checkpoint during the measured run):
#   - the gateway's SQL: N runs of bench/registration.pgbench (pay_auth,
#     pay_claim, pay_finish, as the gateway sends them) by COUNTS_CLIENTS (8)
#     pgbench clients with prepared statements, as the gateway's role;
#   - the rows floor: N runs of bench/rows_floor/reg_rows.sql (the same
#     rows in plain SQL) in database rows_floor of the same cluster.
# For each, per registration: round trips (top-level statements), statements
# with the nested ones (in the functions, triggers and foreign-key checks),
# commits, WAL flushes (pg_stat_wal's wal_sync: fewer than commits when
# commits wait together), WAL records, full-page images and bytes, shared
# blocks hit, read, dirtied and written; and where the clients' backends
# waited (pg_stat_activity sampled every 2 ms: heavyweight locks, the WAL's
# flush, ...).  With COUNTS_TOP=1 the gateway's nested statements by blocks.
#
# COUNTS_TREE=DIR measures another checkout of this repository (its
# migrations, its payments-merchant and its registration.pgbench; the floor
# is this tree's): `git worktree add /tmp/base <commit>`, then
# `COUNTS_TREE=/tmp/base bash bench/reg_counts.sh` against this tree's run.
# COUNTS_CLIENTS="1 4 8 16" repeats the gateway's part per client count
# (the pool's size; bench/README.md, doc/OPERATIONS.md), COUNTS_SETTINGS adds
# cluster settings (e.g. "commit_delay=100 commit_siblings=2"; ci/pg.sh's
# PG_SETTINGS).  Results are appended to bench/results/counts-<time>.txt.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
tree=$(cd "${COUNTS_TREE:-$top}" && pwd)
n=${1:-2000}
clients=${COUNTS_CLIENTS:-8}

# bench_merchant, floor_database
# shellcheck source=bench/lib.sh
. "$top/bench/lib.sh"
# the cluster, sample and measure: bench/counts_lib.sh
# shellcheck source=bench/counts_lib.sh
. "$top/bench/counts_lib.sh"
counts_setup ""

kid=$(bench_merchant "$su" "$tree")
floor_database "$su" "$top/bench/rows_floor/reg_schema.sql"

counts_title registration registrations

counts_table
for c in $clients; do
    measure "gateway (registration.pgbench)" "$db" "$tree/bench/registration.pgbench" "$c" \
        -U payments_gateway -D key_id="$kid"
    if [ "${COUNTS_TOP:-0}" = 1 ]; then
        psql "$su" -XAq -P pager=off -P footer=off -c "
            SELECT calls / $n AS per_reg, toplevel AS top,
                   round((shared_blks_hit + shared_blks_read)::numeric / $n, 1) AS blocks,
                   round(wal_records::numeric / $n, 1) AS wal_recs, round(wal_bytes / $n) AS wal_bytes,
                   left(regexp_replace(query, '\s+', ' ', 'g'), 80) AS query
              FROM pg_stat_statements
             WHERE dbid = (SELECT oid FROM pg_database WHERE datname = 'payments')
               AND query !~* '^(select pg_stat|checkpoint)'
             ORDER BY toplevel DESC, shared_blks_hit + shared_blks_read DESC" | tee -a "$out"
    fi
done
measure "rows floor (rows_floor/reg_rows.sql)" "$floor" "$top/bench/rows_floor/reg_rows.sql" \
    "${clients##* }"
say
say "(counts from pg_stat_statements, pg_stat_wal and pg_stat_database over the measured run;" \
    "blocks are the top-level statements' with their nested ones; waits: share of samples of" \
    "the clients' active backends)"
