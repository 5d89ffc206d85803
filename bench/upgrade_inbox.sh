#!/usr/bin/env bash
# How long an upgrade over migration 091 (the inbox's event ids,
# psp_event_ids) holds webhooks' inserts on a large inbox
# (doc/OPERATIONS.md, "The event inbox": the numbers there come from this).
#
#   bash bench/upgrade_inbox.sh [N [SECONDS]]
#
# A throwaway durable cluster (ci/pg.sh, PG_DURABLE=1) migrated by the
# release before 091 (OLD_REV, default 0463f17, checked out into a temporary
# clone of this repository); N events (default 1000000) received this month
# and N last month, written straight into psp_events (a Stripe
# checkout.session.completed of ~300 bytes and its signature header); then
# two pgbench clients insert events for SECONDS (default 90) while this
# tree's payments-migrate runs 091 and the functions' step.  Prints how long
# the migration took, every second in which an insert waited 100 ms or
# more, and the slowest insert.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
n=${1:-1000000}
secs=${2:-90}
old_rev=${OLD_REV:-0463f17}
dir=$(mktemp -d /tmp/ngx-payments-upgrade-inbox.XXXXXX)
chmod 755 "$dir"
port=$(( 20000 + RANDOM % 20000 ))
pb=
cleanup() {
    if [ -n "$pb" ]; then
        kill "$pb" 2>/dev/null || true
    fi
    bash "$top/ci/pg.sh" stop "$dir/pg" >/dev/null 2>&1 || true
    rm -rf "$dir"
}
trap cleanup EXIT

git clone -q "$top" "$dir/old"
git -C "$dir/old" checkout -q "$old_rev"
mkdir "$dir/pg"
chmod 755 "$dir/pg"
db=$(PG_DURABLE=1 PAYMENTS_MIGRATE="$dir/old/bin/payments-migrate" \
     bash "$top/ci/pg.sh" start "$dir/pg" "$port" | tail -1)

start=$SECONDS
psql "$db" -XAtq -v ON_ERROR_STOP=1 -v n="$n" >/dev/null <<'SQL'
SET TimeZone = 'UTC';
SELECT pay_inbox_partitions(1);
SELECT format('CREATE TABLE %I (LIKE psp_events INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE INCLUDING COMPRESSION)',
              'psp_events_' || to_char(date_trunc('month', now()) - interval '1 month', '"y"YYYY"m"MM')) \gexec
SELECT format('ALTER TABLE psp_events ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
              'psp_events_' || to_char(date_trunc('month', now()) - interval '1 month', '"y"YYYY"m"MM'),
              date_trunc('month', now()) - interval '1 month', date_trunc('month', now())) \gexec
INSERT INTO psp_events (psp, event_id, state, body, headers, key_id, kind, type,
                        token, reference, amount, currency, payment_ref, outcome,
                        merchant_id, checkout_id, applied_at, received_at)
SELECT 'stripe', 'evt_' || m || '_' || g, 'applied',
       convert_to('{"id":"evt_' || g || '","object":"event","type":"checkout.session.completed","data":{"object":{"id":"cs_test_' || md5(g::text) || '","client_reference_id":"m_1:co' || g || '","amount_total":1500,"currency":"usd","payment_status":"paid"}}}', 'UTF8'),
       jsonb_build_object('Stripe-Signature', 't=1764000000,v1=' || encode(sha256(g::text::bytea), 'hex')),
       'sha256:0123456789abcdef', 'CAPTURED', 'checkout.session.completed',
       'cs_test_' || md5(g::text), 'm_1:co' || g, 1500, 'USD', 'pi_' || g, 'applied',
       'm_1', 'co' || m || '_' || g, now(),
       CASE m WHEN 0 THEN now() ELSE date_trunc('month', now()) - interval '3 days' END
  FROM generate_series(1, :n) g, generate_series(0, 1) m;
VACUUM ANALYZE psp_events;
SQL
echo "upgrade_inbox: 2 x $n events written in $((SECONDS - start)) s; the inbox" \
     "$(psql "$db" -XAtq -c "SELECT pg_size_pretty(sum(pg_total_relation_size(inhrelid))) FROM pg_inherits WHERE inhparent = 'psp_events'::regclass")"

# events inserted meanwhile (a webhook's insert waits on the same lock)
cat > "$dir/insert.sql" <<'SQL'
\set g random(1, 1000000000)
INSERT INTO psp_events (psp, event_id, state, body, headers, key_id, kind, type, token, reference, amount, currency, payment_ref, outcome, merchant_id, checkout_id, applied_at) VALUES ('stripe', 'evt_live_' || :client_id || '_' || :g || '_' || clock_timestamp(), 'applied', convert_to('{}', 'UTF8'), '{}'::jsonb, 'k', 'CAPTURED', 't', 'tok', 'm_1:x', 1500, 'USD', 'pi', 'applied', 'm_1', 'cox' || :g, now());
SQL
(cd "$dir" && exec pgbench -n -c 2 -T "$secs" -f insert.sql -l \
     --aggregate-interval=1 "$db" > pgbench.out 2>&1) &
pb=$!
sleep 5

start=$SECONDS
PAYMENTS_DB="$db" "$top/bin/payments-migrate" | sed 's/^/upgrade_inbox: /'
echo "upgrade_inbox: payments-migrate took $((SECONDS - start)) s"
wait "$pb"
pb=
echo "upgrade_inbox: inserts meanwhile: $(grep '^tps' "$dir/pgbench.out")"
# pgbench's aggregate log: epoch, count, sum, sum of squares, min, max (us)
echo "upgrade_inbox: seconds with an insert of 100 ms or more (epoch, inserts, slowest ms):"
cat "$dir"/pgbench_log.* | awk '$6 >= 100000 { printf "  %s %s %.0f\n", $1, $2, $6 / 1000 }' | sort -n
cat "$dir"/pgbench_log.* | awk '$6 > m { m = $6 } END { printf "upgrade_inbox: the slowest insert waited %.0f ms\n", m / 1000 }'
echo "upgrade_inbox: events $(psql "$db" -XAtq -c "SELECT count(*) FROM psp_events"), ids $(psql "$db" -XAtq -c "SELECT count(*) FROM psp_event_ids")"
