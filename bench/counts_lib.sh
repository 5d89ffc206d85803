# shellcheck shell=bash
# bench/counts_lib.sh: what bench/reg_counts.sh and bench/hook_counts.sh
# share (sourced): the sampler of the clients' waits and measure, one line
# of counts per unit of work (a registration, a webhook).  They need $su
# (the superuser's conninfo, database payments), $run (a scratch directory),
# $n (units per run) and $out (the results file).  COUNTS_HARNESS, a regular
# expression, names statements of the pgbench script that are not the
# measured SQL (a webhook's read of its prepared event): they count in no
# column, and each of their calls is one commit less (a read-only
# transaction of its own).
# shellcheck disable=SC2154  # su, run, n, out: the sourcing script's

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
    sample &
    local sp=$!
    pgbench -n -M prepared -c "$c" -j "$(( c < 2 ? 1 : 2 ))" -t $(( n / c )) -D pass=2 "$@" \
        -f "$script" "$conn" > "$run/pgbench.log" 2>&1 || { cat "$run/pgbench.log"; exit 1; }
    wait "$sp"
    sleep 0.6
    local done_n
    done_n=$(awk '/actually processed/ { split($NF, a, "/"); print a[1] }' "$run/pgbench.log")
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
    printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s / %s / %s | %s |\n' \
        "$name" "$c" "$trips" "$stmts" "$commits" "$syncs" "$recs" "$fpi" "$bytes" \
        "$hit" "$rd" "$dirt/$wr" "$(cat "$run/waits")" | tee -a "$out"
}

