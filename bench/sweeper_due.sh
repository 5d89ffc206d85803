#!/usr/bin/env bash
# What one sweeper round's pay_sweeper_due costs beside a long history of
# FAILED checkouts, with this tree's functions and index against the
# function as first written for the FAILED sessions an Adyen cancel cannot
# expire (one OR over both kinds: every FAILED row read each round) and the
# release before (EXECUTING only); and beside many open sessions, against
# the function that read every one each round (0c2a04b's).
#
#   bash bench/sweeper_due.sh [N [E [A]]]  (N FAILED checkouts, default
#                                       300000; E EXECUTING ones, default
#                                       100; A of them, the oldest, asked
#                                       about already, default 0)
#
# A throwaway cluster (root: it runs initdb as postgres; fsync off: the
# query reads, it does not commit much), the schema as payments-migrate
# makes it, N FAILED checkouts created 10 s apart (their sessions long
# expired, but for the last hour's), 500 SUCCESS and E EXECUTING (their
# sessions open, created 16 minutes ago and before, none asked yet); each
# case is called 8 times, the rows' sweep marks cleared before each call,
# and psql's time of each call printed.  A round that reads every FAILED
# checkout costs time in proportion to N; one that reads the open ones
# through checkouts_failed_open does not.  With E above a round's batch
# (50), a round that reads every EXECUTING checkout costs time in
# proportion to E; one that walks checkouts_executing_since from its
# oldest entry reads about 50 while none was asked about, and every one
# asked about before the first never asked (A: a busy shard's steady
# state, its old sessions asked about, its new ones not); one that walks
# from where the last round stopped (sweeper_lease.walk_from, 093) reads
# about 50 again, and at most 10,000 with no record of where to start.
# With A, the marks are put back as they were before each call: the oldest
# A asked about, and walk_from where the round that asked them stopped.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
n=${1:-300000}
e=${2:-100}
a=${3:-0}
d=$(mktemp -d /tmp/sweepbench.XXXX); chown postgres "$d"
port=$((40000 + RANDOM % 10000))
B=/usr/lib/postgresql/15/bin
# the cluster stopped and its directory removed however the script ends
trap 'runuser -u postgres -- $B/pg_ctl -D "$d/data" stop -m fast >/dev/null 2>&1 || true; rm -rf "$d"' EXIT
runuser -u postgres -- $B/initdb -D "$d/data" -A trust >/dev/null
runuser -u postgres -- $B/pg_ctl -D "$d/data" -o "-p $port -k $d -c fsync=off -c shared_buffers=64MB" -l "$d/log" start >/dev/null
c="host=$d port=$port user=postgres dbname=payments"
runuser -u postgres -- $B/createdb -h $d -p $port payments
psql -X -q "host=$d port=$port user=postgres" -c "CREATE ROLE payments_gateway" >/dev/null 2>&1 || true
bash "$top"/bin/payments-migrate "$c" | tail -2
psql -X -q "$c" <<SQL
SET session_replication_role = replica;
INSERT INTO checkouts (merchant_id, checkout_id, psp, nonce, currency, amount_total, success_url, cancel_url, status, psp_request, expires_at, created_at, psp_token, psp_url)
SELECT 'm_bench', 'co_' || g, CASE WHEN g % 3 = 0 THEN 'adyen' ELSE 'stripe' END, 'm_bench:co_' || g, 'EUR', 1000, 'https://s/ok', 'https://s/no',
       CASE WHEN g <= $n THEN 'FAILED' WHEN g <= $n + 500 THEN 'SUCCESS' ELSE 'EXECUTING' END::pay_status,
       '{}', now() - make_interval(secs => ($n + 600 - g) * 10) + interval '1 hour', now() - make_interval(secs => ($n + 600 - g) * 10), 'tok_' || g, 'https://psp/' || g
  FROM generate_series(1, $n + 500) g;
INSERT INTO checkouts (merchant_id, checkout_id, psp, nonce, currency, amount_total, success_url, cancel_url, status, psp_request, expires_at, created_at, psp_token, psp_url)
SELECT 'm_bench', 'co_' || ($n + 500 + g), CASE WHEN g % 3 = 0 THEN 'adyen' ELSE 'stripe' END, 'm_bench:co_' || ($n + 500 + g), 'EUR', 1000, 'https://s/ok', 'https://s/no',
       'EXECUTING', '{}', now() + interval '1 hour', now() - interval '16 minutes' - make_interval(secs => ($e - g) * 0.01), 'tok_' || ($n + 500 + g), 'https://psp/' || ($n + 500 + g)
  FROM generate_series(1, $e) g;
-- the list of FAILED sessions still payable, as checkouts_failed_open
-- keeps it (triggers are off above): every FAILED one with a session URL
-- and an expiry, the long expired included, which the round passes over
-- by the list's index on the expiry
INSERT INTO failed_open_sessions (merchant_id, checkout_id, expires_at)
SELECT merchant_id, checkout_id, expires_at FROM checkouts
 WHERE status = 'FAILED' AND psp_url IS NOT NULL AND expires_at IS NOT NULL;
INSERT INTO sweeper_lease (id, owner, until) VALUES (1, 'me', now() + interval '1 hour')
    ON CONFLICT (id) DO UPDATE SET owner = 'me', until = now() + interval '1 hour';
-- before each call: the oldest p_asked EXECUTING ones asked about (now:
-- not due again; or, p_due, an hour ago: due again), the rest never;
-- walk_from where the round that asked them stopped (p_mark) or none, and
-- the walk of those to ask again from the oldest
CREATE FUNCTION bench_reset(p_asked int, p_mark boolean, p_due boolean DEFAULT false) RETURNS void LANGUAGE sql AS \$\$
    DELETE FROM checkout_sweeps;
    INSERT INTO checkout_sweeps (merchant_id, checkout_id, attempts, last_at)
    SELECT merchant_id, checkout_id, 1,
           now() - CASE WHEN p_due THEN interval '1 hour' ELSE interval '0' END
      FROM checkouts
     WHERE status = 'EXECUTING' ORDER BY created_at LIMIT p_asked;
    UPDATE sweeper_lease SET walk_from = CASE WHEN p_mark THEN
        (SELECT max(c.created_at) FROM checkouts c JOIN checkout_sweeps s
            ON s.merchant_id = c.merchant_id AND s.checkout_id = c.checkout_id
          WHERE c.status = 'EXECUTING') END, reask_from = NULL;
\$\$;
ANALYZE;
SQL
echo "rows: $(psql -XAt "$c" -c "select status, count(*) from checkouts group by 1 order by 1" | tr '\n' ' ')failed_open_sessions|$(psql -XAt "$c" -c "select count(*) from failed_open_sessions")"
q="SELECT count(*) FROM pay_sweeper_due('me', '{stripe,adyen}', '{stripe}', '{adyen}', 1, 1, 60, 1000)"
q5="SELECT count(*) FROM pay_sweeper_due('me', '{stripe,adyen}', '{stripe}', 1, 1, 1000)"
t() {
    local name=$1 query=$2 mark=${3:-true} due=${4:-false} _
    { echo '\timing on'
      for _ in 1 2 3 4 5 6 7 8; do echo "SELECT bench_reset($a, $mark, $due);"; echo "$query;"; done; } |
        psql -XAtq "$c" 2>&1 |
        awk -v n="$name" '/^Time:/ { if (++k % 2 == 0) ms = ms " " $2 }
                          /^[0-9]+$/ { rows = $1 }
                          END { print n ": " rows " rows, ms a call:" ms }'
}
q50="SELECT count(*) FROM pay_sweeper_due('me', '{stripe,adyen}', '{stripe}', '{adyen}', 1, 1, 60, 50)"
t "this tree (UNION ALL, failed_open_sessions)" "$q"
t "this tree, a batch of 50" "$q50"
if [ "$a" -gt 0 ]; then
    t "this tree, a batch of 50, the asked ones due again (a quarter of it asks again)" "$q50" true true
    t "this tree, a batch of 50, no record of where to start" "$q50" false
    git -C "$top" show 41d93c7:sql/functions/pay_sweeper_due.sql | psql -Xq "$c" >/dev/null
    t "41d93c7, a batch of 50 (the never asked walked from the oldest)" "$q50"
fi
git -C "$top" show 0c2a04b:sql/functions/pay_sweeper_due.sql | psql -Xq "$c" >/dev/null
t "0c2a04b, a batch of 50 (every EXECUTING one read)" "$q50"
# (the index of FAILED sessions the older functions read; gone since 096)
psql -Xq "$c" -c "DROP INDEX IF EXISTS checkouts_failed_open" >/dev/null
git -C "$top" show 1c0777c:sql/functions/pay_sweeper_due.sql | psql -Xq "$c" >/dev/null
t "as merged (one OR, no index)" "$q"
git -C "$top" show 4eee677:sql/functions/pay_sweeper_due.sql | psql -Xq "$c" >/dev/null
t "the previous release (EXECUTING only)" "$q5"
