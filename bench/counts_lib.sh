# shellcheck shell=bash
# bench/counts_lib.sh: what bench/reg_counts.sh and bench/hook_counts.sh
# share (sourced): the sampler of the clients' waits and measure, one line
# of counts per unit of work (a registration, a webhook), after
# counts_setup, with $top (this tree), $tree (the tree measured) and $n
# (units per run).  COUNTS_HARNESS, a regular
# expression, names statements of the pgbench script that are not the
# measured SQL (a webhook's read of its prepared event): they count in no
# column, and each of their calls is one commit less (a read-only
# transaction of its own).
# shellcheck disable=SC2154  # top, tree, n: the sourcing script's

# counts_setup [SETTINGS]: a throwaway durable cluster of $tree's (its
# ci/pg.sh and migrations) with pg_stat_statements tracking nested
# statements, and SETTINGS besides (then COUNTS_SETTINGS); sets run, su, db
# (the gateway's database), floor (database rows_floor, not made), out and
# say; the cluster and run go at exit
counts_setup() {
    run=$(mktemp -d /tmp/ngx-payments-counts.XXXXXX)
    chmod 755 "$run"
    pgdir=$run/pg
    pgbin=${PGBIN:-/usr/lib/postgresql/15/bin}
    trap 'bash "$top/ci/pg.sh" stop "$pgdir" >/dev/null 2>&1 || true; rm -rf "$run"' EXIT

    port=$(( 20000 + RANDOM % 20000 ))
    export PG_DURABLE=1 PG_PRELOAD=pg_stat_statements
    # no checkpoint but the one before each warm-up: the counts are of a steady
    # state (after a checkpoint the first change of each page writes the whole
    # page; how many depends on when it came, so the runs keep it out)
    export PG_SETTINGS="pg_stat_statements.track=all ${1:+$1 }pg_stat_statements.max=1000 max_wal_size=8GB checkpoint_timeout=1h ${COUNTS_SETTINGS:-}"
    su=$(bash "$tree/ci/pg.sh" start "$pgdir" "$port")
    # shellcheck disable=SC2034  # db, floor: the sourcing script's
    db="host=127.0.0.1 port=$port dbname=payments"
    # shellcheck disable=SC2034
    floor="host=127.0.0.1 port=$port dbname=rows_floor user=postgres"

    out=$top/bench/results/counts-$(date -u +%Y%m%dT%H%M%SZ).txt
    mkdir -p "$(dirname "$out")"
    psql "$su" -XAtq -v ON_ERROR_STOP=1 -c "CREATE EXTENSION IF NOT EXISTS pg_stat_statements"
}
say() { echo "$*" | tee -a "$out"; }

# counts_title WHAT UNITS: the results' first lines (what is counted, when,
# of which tree, on what cluster, per how many)
counts_title() {
    local label
    label=$(git -C "$tree" log -1 --format='%h %s' 2>/dev/null | cut -c1-70) || true
    say "$1 counts, $(date -u), tree ${label:-$tree}"
    say "durable cluster (fsync, synchronous_commit, full_page_writes on)${COUNTS_SETTINGS:+, $COUNTS_SETTINGS}; $n $2 per line"
    say
}

# counts_table: the table's head
counts_table() {
    say "| SQL | clients | round trips | statements (nested too) | commits | WAL flushes | WAL records | full pages | WAL bytes | row locks; MultiXacts | blocks hit / read / dirtied/written | backends' samples waiting on |"
    say "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
}

# sample WHO: every 2 ms until pgbench's backends are gone, how many of the
# active ones waited on what (wait_event_type:wait_event, or "cpu")
sample() {
    psql "${su/dbname=payments/dbname=postgres}" -XAtq -c "
        CREATE TEMP TABLE s (what text, n bigint);
        DO \$\$
        DECLARE seen boolean := false; live int;
        BEGIN
            FOR i IN 1..300000 LOOP
                PERFORM pg_stat_clear_snapshot();
                SELECT count(*) INTO live FROM pg_stat_activity
                 WHERE application_name = 'pgbench';
                EXIT WHEN seen AND live = 0;
                seen := seen OR live > 0;
                INSERT INTO s
                SELECT coalesce(wait_event_type || ':' || wait_event, 'cpu'), 1
                  FROM pg_stat_activity
                 WHERE application_name = 'pgbench' AND state = 'active';
                PERFORM pg_sleep(0.002);
            END LOOP;
        END \$\$;
        SELECT string_agg(what || ' ' || round(100.0 * c / t, 1) || '%', ', ' ORDER BY c DESC)
          FROM (SELECT what, sum(n) c, sum(sum(n)) OVER () t FROM s GROUP BY what) x
         WHERE 100.0 * c / t >= 0.5" > "$run/waits" 2>&1
}

# measure NAME CONNINFO SCRIPT CLIENTS [pgbench args]: warm-up, reset, run,
# then one line of counts per unit; pgbench's variable pass is 1 in the
# warm-up, 2 in the measured run (a script that must not repeat its work,
# e.g. pay the same checkout twice, picks by it)
measure() {
    local name=$1 conn=$2 script=$3 c=$4 dbname harness_re=${COUNTS_HARNESS:-^\$NONE^}
    shift 4
    dbname=$(sed -n 's/.*dbname=\([^ ]*\).*/\1/p' <<<"$conn")
    psql "$su" -XAtq -c "CHECKPOINT" >/dev/null
    pgbench -n -M prepared -c "$c" -j "$(( c < 2 ? 1 : 2 ))" -t $(( n / c )) -D pass=1 "$@" \
        -f "$script" "$conn" > "$run/warm.log" 2>&1 || { cat "$run/warm.log"; exit 1; }
    psql "$su" -XAtq -c "SELECT pg_stat_statements_reset()" \
        -c "SELECT pg_stat_reset_shared('wal')" >/dev/null
    psql "${su/dbname=payments/dbname=$dbname}" -XAtq -c "SELECT pg_stat_reset()" >/dev/null
    sleep 0.6   # the statistics' reset reaches the shared counters
    local lsn0 lsn1
    lsn0=$(psql "$su" -XAtq -c "SELECT pg_current_wal_lsn()")
    sample &
    local sp=$!
    pgbench -n -M prepared -c "$c" -j "$(( c < 2 ? 1 : 2 ))" -t $(( n / c )) -D pass=2 "$@" \
        -f "$script" "$conn" > "$run/pgbench.log" 2>&1 || { cat "$run/pgbench.log"; exit 1; }
    wait "$sp"
    lsn1=$(psql "$su" -XAtq -c "SELECT pg_current_wal_lsn()")
    sleep 0.6
    local done_n
    done_n=$(awk '/actually processed/ { split($NF, a, "/"); print a[1] }' "$run/pgbench.log")
    # the run's row locks and MultiXacts, from its WAL: a lock (SELECT ...
    # FOR UPDATE, a foreign key's check, an UPDATE of a table with a BEFORE
    # UPDATE row trigger) is a record of its own, even on a row this
    # transaction wrote; a MultiXact joins two lockers of one row (a
    # subtransaction's and its parent's, say)
    "$pgbin/pg_waldump" -p "$pgdir/data/pg_wal" -s "$lsn0" -e "$lsn1" \
        > "$run/wal.txt" 2>/dev/null || true
    local locks
    locks=$(awk -v n="$done_n" '/desc: LOCK / { l++ } /rmgr: MultiXact .*CREATE_ID/ { m++ }
        END { printf "%.2f; %.2f", l / n, m / n }' "$run/wal.txt")
    psql "$su" -XAtq -F ' ' -c "
        WITH s AS (
            SELECT sum(calls) FILTER (WHERE toplevel) AS trips,
                   sum(calls) AS stmts,
                   sum(shared_blks_hit) FILTER (WHERE toplevel) AS hit,
                   sum(shared_blks_read) FILTER (WHERE toplevel) AS rd,
                   sum(shared_blks_dirtied) FILTER (WHERE toplevel) AS dirt,
                   sum(shared_blks_written) FILTER (WHERE toplevel) AS wr,
                   sum(wal_records) FILTER (WHERE toplevel) AS recs
              FROM pg_stat_statements
             WHERE dbid = (SELECT oid FROM pg_database WHERE datname = '$dbname')
               AND query !~* '^(select pg_stat|checkpoint)'
               AND query !~ '$harness_re'),
        h AS (
            SELECT coalesce(sum(calls) FILTER (WHERE toplevel), 0) AS calls
              FROM pg_stat_statements
             WHERE dbid = (SELECT oid FROM pg_database WHERE datname = '$dbname')
               AND query ~ '$harness_re')
        SELECT round(s.trips / $done_n, 2), round(s.stmts / $done_n, 1),
               round((d.xact_commit - h.calls)::numeric / $done_n, 2),
               round(w.wal_sync::numeric / $done_n, 2),
               round(w.wal_records::numeric / $done_n, 1), round(w.wal_fpi::numeric / $done_n, 2),
               round(w.wal_bytes / $done_n), round(s.hit / $done_n, 1), round(s.rd / $done_n, 2),
               round(s.dirt / $done_n, 2), round(s.wr / $done_n, 2)
          FROM s, h, pg_stat_wal w, pg_stat_database d WHERE d.datname = '$dbname'" > "$run/counts"
    read -r trips stmts commits syncs recs fpi bytes hit rd dirt wr < "$run/counts"
    printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s / %s / %s | %s |\n' \
        "$name" "$c" "$trips" "$stmts" "$commits" "$syncs" "$recs" "$fpi" "$bytes" "$locks" \
        "$hit" "$rd" "$dirt/$wr" "$(cat "$run/waits")" | tee -a "$out"
    # COUNTS_TOP=1: the row locks by table
    if [ "${COUNTS_TOP:-0}" = 1 ]; then
        sed -n 's/.*desc: LOCK .*rel [0-9]*\/[0-9]*\/\([0-9]*\) .*/\1/p' "$run/wal.txt" | sort | uniq -c |
            while read -r k node; do
                say "  row locks per unit on $(psql "${su/dbname=payments/dbname=$dbname}" -XAtq -c "
                    SELECT coalesce(max(relname), 'relfilenode $node') FROM pg_class
                     WHERE relfilenode = $node"): $(awk -v k="$k" -v n="$done_n" 'BEGIN { printf "%.2f", k / n }')"
            done
    fi
}

