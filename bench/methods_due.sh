#!/usr/bin/env bash
# What one sweeper round's saved-method step costs beside a long history of
# methods saved: pay_sweeper_methods_due and pay_sweeper_methods_unsaved
# through checkouts_method_unalerted and checkouts_method_alerted (the
# paid checkouts still without their method, not alerted and alerted),
# against the same functions with those indexes dropped.
#
#   bash bench/methods_due.sh [N]     (N saved methods, default 300000)
#
# A throwaway cluster (root: it runs initdb as postgres; fsync off), the
# schema as payments-migrate makes it, N SUCCESS checkouts that saved their
# method (method_saved_at set) created 10 s apart, 50 SUCCESS ones still
# without it (their method's event lost) and 100 EXECUTING; each case is
# called 8 times, the rows' method marks cleared before each call, and
# psql's time of each call printed.  Without the index a round reads every
# saving checkout ever paid; with it, the few still without a method.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
n=${1:-300000}
d=$(mktemp -d /tmp/methodsbench.XXXX); chown postgres "$d"
port=$((40000 + RANDOM % 10000))
B=/usr/lib/postgresql/15/bin
runuser -u postgres -- $B/initdb -D "$d/data" -A trust >/dev/null
runuser -u postgres -- $B/pg_ctl -D "$d/data" -o "-p $port -k $d -c fsync=off -c shared_buffers=64MB" -l "$d/log" start >/dev/null
trap 'runuser -u postgres -- $B/pg_ctl -D "$d/data" stop -m fast >/dev/null 2>&1 || true; rm -rf "$d"' EXIT
c="host=$d port=$port user=postgres dbname=payments"
runuser -u postgres -- $B/createdb -h $d -p $port payments
psql -X -q "host=$d port=$port user=postgres" -c "CREATE ROLE payments_gateway" >/dev/null 2>&1 || true
bash "$top"/bin/payments-migrate "$c" | tail -2
psql -X -q "$c" <<SQL
SET session_replication_role = replica;
INSERT INTO checkouts (merchant_id, checkout_id, psp, nonce, currency, amount_total, success_url, cancel_url, status, psp_request, expires_at, created_at, psp_token, psp_url, save_method, method_saved_at)
SELECT 'm_bench', 'co_' || g, CASE WHEN g % 3 = 0 THEN 'adyen' ELSE 'stripe' END, 'm_bench:co_' || g, 'EUR', 1000, 'https://s/ok', 'https://s/no',
       CASE WHEN g <= $n + 50 THEN 'SUCCESS' ELSE 'EXECUTING' END::pay_status,
       '{}', now() - make_interval(secs => ($n + 150 - g) * 10) + interval '1 hour', now() - make_interval(secs => ($n + 150 - g) * 10), 'tok_' || g, 'https://psp/' || g,
       '{"customer": "c", "customer_ref": "cu_000000000000000000000000", "usage": "off_session", "recurring": "Subscription"}'::jsonb,
       CASE WHEN g <= $n THEN now() - make_interval(secs => ($n + 150 - g) * 10) END
  FROM generate_series(1, $n + 150) g;
INSERT INTO sweeper_lease (id, owner, until) VALUES (1, 'me', now() + interval '1 hour')
    ON CONFLICT (id) DO UPDATE SET owner = 'me', until = now() + interval '1 hour';
ANALYZE;
SQL
echo "rows: $(psql -XAt "$c" -c "select status, (method_saved_at is null) as unsaved, count(*) from checkouts group by 1, 2 order by 1, 2" | tr '\n' ' ')"
due="SELECT count(*) FROM pay_sweeper_methods_due('me', '{stripe}', 1, 1, 1000)"
unsaved="SELECT count(*) FROM pay_sweeper_methods_unsaved('me', '{stripe,adyen}', 1, 100)"
t() {
    local name=$1 query=$2 _
    { echo '\timing on'
      for _ in 1 2 3 4 5 6 7 8; do echo "UPDATE checkout_sweeps SET method_asked_at = NULL; UPDATE checkouts SET method_alerted_at = NULL WHERE method_alerted_at IS NOT NULL;"; echo "$query;"; done; } |
        psql -XAtq "$c" 2>&1 |
        awk -v n="$name" '/^Time:/ { if (++k % 3 == 0) ms = ms " " $2 }
                          /^[0-9]+$/ { rows = $1 }
                          END { print n ": " rows " rows, ms a call:" ms }'
}
t "pay_sweeper_methods_due, partial indexes" "$due"
t "pay_sweeper_methods_unsaved, partial indexes" "$unsaved"
psql -XAt "$c" -c "EXPLAIN SELECT 1 FROM checkouts c WHERE c.save_method IS NOT NULL AND c.method_saved_at IS NULL AND c.method_alerted_at IS NULL AND c.status IN ('SUCCESS', 'AUTHORIZED') AND c.created_at < now() - interval '1 s'" | head -3
psql -Xq "$c" -c "DROP INDEX checkouts_method_unalerted, checkouts_method_alerted" >/dev/null
t "pay_sweeper_methods_due, no index" "$due"
t "pay_sweeper_methods_unsaved, no index" "$unsaved"
