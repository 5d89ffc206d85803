#!/usr/bin/env bash
# What the executing checkouts' gauge (pay_executing_stats, once a minute
# on one of worker 0's pool connections) costs beside N open sessions, with
# this tree's function (exact up to 10,000, then the index's size) against
# the one before 2026-11-27 (a count of every checkout EXECUTING).
#
#   bash bench/executing_gauge.sh [N]     (N checkouts EXECUTING, default 1000000)
#
# A throwaway cluster (root: it runs initdb as postgres; fsync off: the
# query reads, it does not commit), shared_buffers 128MB, the schema as
# payments-migrate makes it, N checkouts EXECUTING of about the size a
# registration stores (a 1.2 kB PSP request), vacuumed; each function is
# called four times, then every row is updated once (as a live table's
# rows are between two of autovacuum's passes: their pages no longer all
# visible, so a count must read the heap) and each is called three times
# more; psql's time of each call printed, with the count it gave.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
n=${1:-1000000}
d=$(mktemp -d /tmp/gaugebench.XXXX); chown postgres "$d"
port=$((40000 + RANDOM % 10000))
B=/usr/lib/postgresql/15/bin
runuser -u postgres -- $B/initdb -D "$d/data" -A trust >/dev/null
runuser -u postgres -- $B/pg_ctl -D "$d/data" -o "-p $port -k $d -c fsync=off -c shared_buffers=128MB" -l "$d/log" start >/dev/null
trap 'runuser -u postgres -- $B/pg_ctl -D "$d/data" stop -m fast >/dev/null; rm -rf "$d"' EXIT
c="host=$d port=$port user=postgres dbname=payments"
runuser -u postgres -- $B/createdb -h "$d" -p $port payments
psql -X -q "host=$d port=$port user=postgres" -c "CREATE ROLE payments_gateway" >/dev/null 2>&1 || true
bash "$top"/bin/payments-migrate "$c" | tail -1
psql -X -q "$c" <<SQL
SET session_replication_role = replica;
INSERT INTO checkouts (merchant_id, checkout_id, psp, nonce, currency, amount_total, success_url, cancel_url, status, psp_request, expires_at, created_at, psp_token, psp_url)
SELECT 'm_bench', 'co_' || g, 'stripe', 'm_bench:co_' || g, 'EUR', 1000, 'https://s/ok', 'https://s/no',
       'EXECUTING', repeat('x', 1200), now() + interval '1 hour', now() - make_interval(secs => ($n - g) * 0.01), 'tok_' || g, 'https://psp/' || g
  FROM generate_series(1, $n) g;
VACUUM ANALYZE checkouts;
SQL
echo "$n checkouts EXECUTING, table $(psql -XAt "$c" -c "SELECT pg_size_pretty(pg_relation_size('checkouts'))")"
old=$(git -C "$top" show 92f1de4:sql/functions/pay_executing_stats.sql)
t() {   # NAME CALLS: the calls' times and the count they gave
    local name=$1 calls=$2 _
    { [ "$name" = before ] && echo "$old"
      printf '%s\n' '\timing on'
      for _ in $(seq "$calls"); do echo "SELECT executing FROM pay_executing_stats();"; done; } |
        psql -XAtq "$c" 2>&1 |
        awk -v n="$name" '/^Time:/ { ms = ms " " $2 } /^[0-9]+$/ { count = $1 }
                          END { print "  " n ": count " count ", ms a call:" ms }'
    psql -Xq "$c" -f "$top/sql/functions/pay_executing_stats.sql" >/dev/null
}
echo "all visible (just vacuumed):"
t before 4
t "this tree" 4
psql -XAtq "$c" -c "SET session_replication_role = replica; UPDATE checkouts SET psp_token = psp_token || 'x'" >/dev/null
echo "every row updated once since:"
t before 3
t "this tree" 3
