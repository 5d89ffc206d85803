#!/usr/bin/env bash
# `make bench-guards`: what the database's guards cost a verified webhook
# and a registration, in PostgreSQL CPU per unit and in units per second
# (bench/README.md):
#
#   bash bench/guards.sh [webhooks|registrations [ROUNDS [N]]]
#                                       (default webhooks, 3 rounds of 16000)
#
# A throwaway durable cluster (fsync, synchronous_commit, full_page_writes
# on; no pg_stat_statements, whose nested tracking would cost the gateway's
# 26 to 38 statements a unit more than the floor's 3 to 11), the tree's
# migrations, a merchant; then ROUNDS rounds (after a round 0 of a few
# hundred units, not shown, that warms every configuration), each running
# every configuration below once in this order, N units each, after a
# checkpoint, by 8 pgbench clients with prepared statements, as the
# gateway's role:
#   webhooks       bench/webhook.pgbench (pay_event_keep as the gateway
#                  sends it for a paid Stripe checkout), each on a checkout
#                  of its own (bench/lib.sh's wh_prepare, their tokens keyed
#                  by a blind index as a gateway with a key file keeps them);
#                  floor bench/rows_floor/hook_rows.sql
#   registrations  bench/registration.pgbench (pay_auth, pay_claim,
#                  pay_finish); floor bench/rows_floor/reg_rows.sql
#
# The configurations, each without what the one before lacked too:
#   guards     the schema as it ships
#   -balance   without the deferred ledger balance checks
#   -triggers  without the triggers that only refuse (status rules,
#              append-only rules, the audit anchors' rule, the PSP
#              allowed, the commission frozen); the ones that write stay
#              (the inbox's id row, the notification, the frozen
#              commission, the audit row's link and its chain's anchor)
#   -foreign   without the foreign keys' triggers
#   -checks    without the tables' CHECK constraints (dropped, then added
#              back NOT VALID)
#   floor      the same rows in plain SQL, in a database of the same cluster
#
# Each line: units per second, and the cluster's CPU per unit (user and
# system time of the postmaster and every process it started, from /proc,
# over the run; the pgbench clients excluded).  Compare within a round: the
# machine moves between rounds.  A guard is only switched off here, in a
# throwaway cluster, to measure it; the gateway never runs without them.
# Results are appended to bench/results/guards-<time>.txt.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
what=${1:-webhooks}
rounds=${2:-3}
events=${3:-16000}
case $what in
    webhooks|registrations) ;;
    *) echo "usage: bench/guards.sh [webhooks|registrations [ROUNDS [N]]]" >&2; exit 2 ;;
esac
configs="guards -balance -triggers -foreign -checks floor"
# the tables a paid webhook or a registration writes (psp_events: its
# partitions inherit the triggers and checks)
tables="checkouts payment_orders order_events ledger_transactions ledger_entries
        audit_heads audit_log psp_events psp_event_ids psp_payments psp_tokens
        webhook_events wallet_credits idempotency_keys checkout_risk"
# the user triggers that write, kept in -triggers
# the same, one line of words for SQL
table_list=$(tr -s ' \n' '  ' <<<"$tables")
writers="psp_events.psp_events_id_insert checkouts.checkouts_notify
         checkouts.checkouts_merchant_terms audit_log.audit_log_link"

# wh_prepare, wh_queue
# shellcheck source=bench/lib.sh
. "$top/bench/lib.sh"

run=$(mktemp -d /tmp/ngx-payments-guards.XXXXXX)
chmod 755 "$run"
pgdir=$run/pg
trap 'bash "$top/ci/pg.sh" stop "$pgdir" >/dev/null 2>&1 || true; rm -rf "$run"' EXIT
port=$(( 20000 + RANDOM % 20000 ))
PG_DURABLE=1 PG_PRELOAD='' PG_SETTINGS="max_wal_size=8GB checkpoint_timeout=1h" \
    bash "$top/ci/pg.sh" start "$pgdir" "$port" >/dev/null
su="host=127.0.0.1 port=$port dbname=payments user=postgres"
gw="host=127.0.0.1 port=$port dbname=payments user=payments_gateway"
floor="host=127.0.0.1 port=$port dbname=rows_floor user=postgres"
kid=$(bench_merchant "$su" "$top")
if [ "$what" = webhooks ]; then
    floor_database "$su" "$top/bench/rows_floor/schema.sql"
    floor_sql=$top/bench/rows_floor/hook_rows.sql
else
    floor_database "$su" "$top/bench/rows_floor/reg_schema.sql"
    floor_sql=$top/bench/rows_floor/reg_rows.sql
fi
# the CHECK constraints the -checks line drops, to add back NOT VALID
checks=$(psql "$su" -XAtq -F ' ' -c "
    SELECT format('ALTER TABLE %s ADD CONSTRAINT %I %s NOT VALID;', conrelid::regclass, conname,
                  pg_get_constraintdef(oid))
      FROM pg_constraint
     WHERE contype = 'c' AND conislocal
       AND conrelid::regclass::text = ANY (string_to_array(trim('$table_list'), ' '))")

out=$top/bench/results/guards-$(date -u +%Y%m%dT%H%M%SZ).txt
mkdir -p "$(dirname "$out")"
say() { echo "$*" | tee -a "$out"; }
say "$what: the guards' cost, $(date -u), tree $(git -C "$top" log -1 --format='%h %s' | cut -c1-70)"
say "durable cluster; $events $what a line, 8 clients; $rounds rounds"
say
say "| round | line | $what/s | PostgreSQL CPU per unit (ms) |"
say "| --- | --- | --- | --- |"

pm=$(head -1 "$pgdir/data/postmaster.pid")
# the cluster's CPU so far, in ms: the postmaster's own and its reaped
# children's, and every live child's
cpu_ms() {
    local t=0 p f
    for p in "$pm" $(pgrep -P "$pm"); do
        { read -r -a f < "/proc/$p/stat"; } 2>/dev/null || continue
        t=$(( t + f[13] + f[14] ))
        [ "$p" = "$pm" ] && t=$(( t + f[15] + f[16] ))
    done
    echo $(( t * 1000 / $(getconf CLK_TCK) ))
}
triggers() {   # ENABLE|DISABLE ALL, or DISABLE refusing: on every table in $tables
    local t
    for t in $tables; do echo "ALTER TABLE $t $1 TRIGGER ${2/refusing/USER};"; done |
        psql "$su" -XAtq -v ON_ERROR_STOP=1
    if [ "$2" = refusing ]; then writers ENABLE; fi
}
writers() {    # ENABLE: the user triggers that write
    local w
    for w in $writers; do echo "ALTER TABLE ${w%%.*} $1 TRIGGER ${w#*.};"; done |
        psql "$su" -XAtq -v ON_ERROR_STOP=1
}
balance() {
    psql "$su" -XAtq -v ON_ERROR_STOP=1 \
        -c "ALTER TABLE ledger_entries $1 TRIGGER ledger_entries_balanced" \
        -c "ALTER TABLE ledger_transactions $1 TRIGGER ledger_transactions_balanced"
}
nochecks() {
    psql "$su" -XAtq -v ON_ERROR_STOP=1 -c "
        DO \$\$ DECLARE r record; BEGIN
          FOR r IN SELECT conrelid::regclass AS t, conname FROM pg_constraint
                    WHERE contype = 'c' AND conislocal
                      AND conrelid::regclass::text = ANY (string_to_array(trim('$table_list'), ' '))
          LOOP EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', r.t, r.conname); END LOOP;
        END \$\$"
}

# round 0, not shown: every configuration once on a few checkouts, so that
# round 1's first line does not pay for the cold caches and each backend's
# first compile of every function
for r in $(seq 0 "$rounds"); do
    n=$(( r == 0 ? 800 : events ))
    per=$(( n / 8 ))
    for c in $configs; do
        if [ "$c" != floor ] && [ "$what" = webhooks ]; then
            p="g${r}${c//[^a-z]/}"
            wh_prepare "$su" bench "$p" "$n"
            psql "$su" -XAtq -v ON_ERROR_STOP=1 -c "UPDATE psp_tokens
                SET psp_token = encode(sha256(convert_to('psp_token:stripe ' || psp_token, 'UTF8')), 'hex')
                WHERE merchant_id = 'bench' AND checkout_id LIKE '${p}x%'" -c "VACUUM ANALYZE"
            wh_queue "$su" "${p}x%"
        fi
        case $c in
            -balance) balance DISABLE ;;
            -triggers) triggers DISABLE refusing ;;
            -foreign) triggers DISABLE ALL; writers ENABLE ;;
            -checks) triggers DISABLE ALL; writers ENABLE; nochecks ;;
        esac
        psql "$su" -XAtq -c "CHECKPOINT"
        c0=$(cpu_ms)
        if [ "$c" = floor ]; then
            pgbench -n -M prepared -c 8 -j 2 -t "$per" -f "$floor_sql" \
                "$floor" > "$run/pgbench.log" 2>&1 || { cat "$run/pgbench.log"; exit 1; }
        elif [ "$what" = registrations ]; then
            pgbench -n -M prepared -c 8 -j 2 -t "$per" -D key_id="$kid" \
                -f "$top/bench/registration.pgbench" "$gw" > "$run/pgbench.log" 2>&1 ||
                { cat "$run/pgbench.log"; exit 1; }
        else
            pgbench -n -M prepared -c 8 -j 2 -t "$per" -D per="$per" -D pass=1 -D n=0 \
                -D clients=8 -f "$top/bench/webhook.pgbench" "$gw" > "$run/pgbench.log" 2>&1 ||
                { cat "$run/pgbench.log"; exit 1; }
        fi
        c1=$(cpu_ms)
        grep -q "number of failed transactions: 0 " "$run/pgbench.log" ||
            { cat "$run/pgbench.log"; exit 1; }
        case $c in
            -balance|-triggers|-foreign) triggers ENABLE ALL ;;
            -checks) triggers ENABLE ALL
                     psql "$su" -XAtq -v ON_ERROR_STOP=1 -c "$checks" ;;
        esac
        [ "$(psql "$su" -XAtq -c "SELECT count(*) FROM pg_trigger WHERE tgenabled = 'D'")" = 0 ] ||
            { echo "bench/guards.sh: a trigger left disabled after $c" >&2; exit 1; }
        [ "$r" = 0 ] && continue
        say "| $r | $c | $(awk '/^tps/ { printf "%.0f", $3 }' "$run/pgbench.log") |" \
            "$(awk -v a="$c0" -v b="$c1" -v n="$events" 'BEGIN { printf "%.3f", (b - a) / n }') |"
    done
done
# every event paid its checkout; every registration stored its PSP's answer
if [ "$what" = webhooks ]; then
    left=$(psql "$su" -XAtq -v ON_ERROR_STOP=1 -c "SELECT count(*) FROM checkouts
        WHERE merchant_id = 'bench' AND checkout_id LIKE 'g%' AND status <> 'SUCCESS'")
else
    left=$(psql "$su" -XAtq -v ON_ERROR_STOP=1 -c "SELECT count(*) FROM idempotency_keys
        WHERE merchant_id = 'bench' AND state <> 'done'")
fi
[ "$left" = 0 ] || { echo "bench/guards.sh: $left $what not done" >&2; exit 1; }
say
say "(CPU: the cluster's processes' user and system time over the run, per unit; rates within a round only)"
