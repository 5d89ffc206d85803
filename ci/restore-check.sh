#!/usr/bin/env bash
# A backup restored into another PostgreSQL cluster, as doc/OPERATIONS.md
# ("Restoring a backup") does it, on two throwaway clusters (ci/pg.sh):
#
#   A, the old cluster: its transaction ids past 2^32 (pg_resetwal -e 1:
#     what years of traffic leave, without using them up), a database
#     owned by the role payments, migrated; shop1's events (one of a
#     transaction that began first and stored last, two of one
#     transaction, each for two endpoints) and shop2's 3,000, each a step
#     back in time (as many places as events: more than the new cluster
#     has used ids);
#   B, the new one: the roles, pg_restore of A's pg_dump; the restored
#     events past B's ids, the feed refused (PY015), an event stored
#     meanwhile; payments-migrate; then each feed as A listed it, the
#     cursors A gave (and another endpoint's copy of one) going on from
#     where they were, the event stored meanwhile and one stored after
#     following, nothing left past B's ids, the gateway's grants restored,
#     and a second payments-migrate with nothing to do.
#
# About 30 s on 2 cores.  Prints "restore: N passed, N failed"; exit 1
# when any failed.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
pgbin=${PGBIN:-/usr/lib/postgresql/15/bin}

run=$(mktemp -d "${TMPDIR:-/tmp}/ngx-payments-restore.XXXXXX")
chmod 755 "$run"
a=$run/a b=$run/b
cleanup() {
    bash "$top/ci/pg.sh" stop "$a" >/dev/null 2>&1 || true
    bash "$top/ci/pg.sh" stop "$b" >/dev/null 2>&1 || true
    rm -rf "$run"
}
trap cleanup EXIT

as_owner() {
    if [ "$(id -u)" -eq 0 ]; then
        (cd / && runuser -u postgres -- "$@")
    else
        "$@"
    fi
}

passed=0 failed=0
ok() { echo "restore: ok: $*"; passed=$((passed + 1)); }
bad() { echo "restore: FAILED: $*"; failed=$((failed + 1)); }
check() { # WHAT EXPECTED ACTUAL (each cut to 120 characters when told)
    if [ "$2" = "$3" ]; then ok "$1"; else bad "$1: expected '${2:0:120}', got '${3:0:120}'"; fi
}

q() { psql -X -At -q -v ON_ERROR_STOP=1 "$@"; }

# a cluster started in DIR on PORT (ci/pg.sh), without ci/pg.sh's
# database: its superuser's conninfo
cluster() { # DIR PORT
    local ci
    ci=$(PAYMENTS_MIGRATE=/nonexistent bash "$top/ci/pg.sh" start "$1" "$2" 2>/dev/null)
    ci=${ci/dbname=payments/dbname=postgres}
    q "$ci" -c 'DROP DATABASE IF EXISTS payments'
    echo "$ci"
}

ep() { printf 'ep_%024d' "$1"; }
rf() { printf 'rf_%024s' "$1" | tr ' ' 0; }

# one transaction storing an event for each refund named (a1: rf_0...0a1)
enqueue() { # DB MERCHANT NAME...
    local db=$1 m=$2 sql='' n
    shift 2
    for n in "$@"; do
        sql+="SELECT notify_enqueue('$m', 'refund.succeeded', 'co_x', '$(rf "$n")',
                  jsonb_build_object('refund_id', '$(rf "$n")'));"
    done
    q "$db" -c "BEGIN;" -c "$sql" -c "COMMIT;" >/dev/null
}

# The merchant's feed as a shop reads it, page after page from AFTER (an
# id; none: from the oldest): the refunds' names (a1, ...) or numbers,
# comma-separated.
feed() { # DB MERCHANT [AFTER]
    q "$1" -v m="$2" -v after="${3:-}" <<'SQL'
CREATE FUNCTION pg_temp.feed(p_m text, p_after text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    v_page   jsonb;
    v_after  text := nullif(p_after, '');
    v_out    text[] := '{}';
    e        jsonb;
BEGIN
    LOOP
        v_page := pay_list_events(p_m, NULL, v_after, 100)::jsonb;
        FOR e IN SELECT x FROM jsonb_array_elements(v_page->'data') x LOOP
            v_out := v_out || coalesce(ltrim(substr(e->'data'->>'refund_id', 4), '0'),
                                       e->'data'->>'n');
            v_after := e->>'id';
        END LOOP;
        EXIT WHEN NOT (v_page->>'has_more')::boolean;
    END LOOP;
    RETURN array_to_string(v_out, ',');
END
$$;
SELECT pg_temp.feed(:'m', :'after');
SQL
}

past() { # DB: the rows whose feed_xact the cluster has not reached
    q "$1" -c "SELECT count(*) FROM notifications
                WHERE feed_xact >= pg_snapshot_xmax(pg_current_snapshot())"
}

# --- A, the old cluster ---------------------------------------------------------
port_a=$(bash "$top/ci/services.sh" port)
cluster "$a" "$port_a" >/dev/null
bash "$top/ci/pg.sh" stop "$a"
as_owner "$pgbin/pg_resetwal" -e 1 -D "$a/data" >/dev/null
su_a=$(cluster "$a" "$port_a")
q "$su_a" -c 'CREATE ROLE payments LOGIN CREATEROLE' -c 'CREATE DATABASE payments OWNER payments'
db_a="host=127.0.0.1 port=$port_a dbname=payments user=payments"
"$top/bin/payments-migrate" "$db_a" >"$run/migrate-a.log" 2>&1 ||
    { cat "$run/migrate-a.log"; exit 1; }

q "$db_a" <<SQL
INSERT INTO merchants (merchant_id, name, mode) VALUES ('shop1', 'one', 'test'), ('shop2', 'two', 'test');
INSERT INTO notify_endpoints (merchant_id, endpoint_id, url, host, secret_sealed) VALUES
    ('shop1', '$(ep 1)', 'https://shop1.example/h', 'shop1.example', 'v1.k.sealed-1'),
    ('shop1', '$(ep 2)', 'https://shop1.example/h2', 'shop1.example', 'v1.k.sealed-2'),
    ('shop2', '$(ep 3)', 'https://shop2.example/h', 'shop2.example', 'v1.k.sealed-3');
SQL
enqueue "$db_a" shop1 a1
enqueue "$db_a" shop1 a2
enqueue "$db_a" shop1 a3
enqueue "$db_a" shop1 a4 a5
# a3's transaction began before a2's (an event's time is its transaction's
# start): the feed lists it after a2 all the same, and so must B
q "$db_a" -c "UPDATE notifications SET created_at = created_at - interval '10 seconds'
               WHERE merchant_id = 'shop1' AND object_id = '$(rf a3)'"
q "$db_a" <<'SQL'
DO $$
BEGIN
    FOR i IN 1 .. 3000 LOOP
        PERFORM notify_enqueue('shop2', 'refund.succeeded', 'co_x', 'rf_' || lpad(i::text, 24, '0'),
                               jsonb_build_object('n', i));
        COMMIT;
    END LOOP;
END
$$;
UPDATE notifications SET created_at = created_at - substr(object_id, 4)::int * interval '1 second'
 WHERE merchant_id = 'shop2';
SQL

shop1_a=$(feed "$db_a" shop1)
case $shop1_a in
    a1,a2,a3,a4,a5|a1,a2,a3,a5,a4) ok "A lists shop1's events in the order of their transactions: $shop1_a" ;;
    *) bad "A lists shop1's events out of the order of their transactions: $shop1_a" ;;
esac
shop2_a=$(feed "$db_a" shop2)
check "A lists shop2's 3,000 events in the order of their transactions" \
    "$(seq -s, 1 3000)" "$shop2_a"
cursor=$(q "$db_a" -c "SELECT e->>'id' FROM jsonb_array_elements(pay_list_events('shop1', NULL, NULL, 100)::jsonb->'data') e
                        WHERE e->'data'->>'refund_id' = '$(rf a2)'")
copy=$(q "$db_a" -c "SELECT notification_id FROM notifications WHERE merchant_id = 'shop1'
                      AND endpoint_id = '$(ep 2)' AND object_id = '$(rf a2)'")
after_a2=${shop1_a#a1,a2,}
pg_dump --format=custom --file="$run/payments.dump" "$db_a"

# --- B, the new cluster: doc/OPERATIONS.md's commands, as SQL -------------------
port_b=$(bash "$top/ci/services.sh" port)
su_b=$(cluster "$b" "$port_b")
q "$su_b" -c 'CREATE ROLE payments LOGIN CREATEROLE' -c 'CREATE ROLE payments_gateway LOGIN' \
          -c 'CREATE ROLE "payments-reconcile" LOGIN IN ROLE payments' \
          -c 'CREATE DATABASE payments OWNER payments'
db_b="host=127.0.0.1 port=$port_b dbname=payments user=payments"
pg_restore --exit-on-error --single-transaction --dbname="$db_b" "$run/payments.dump"

n=$(past "$db_b")
[ "$n" -gt 0 ] && ok "restored: $n notifications past B's transaction ids" ||
    bad "restored: no notification past B's transaction ids (is A's epoch 1?)"
out=$(psql -X -At -v VERBOSITY=verbose "$db_b" -c "SELECT pay_list_events('shop1', NULL, NULL, 10)" 2>&1 || true)
case $out in
    *PY015*) ok "before payments-migrate the feed is refused (PY015)" ;;
    *) bad "before payments-migrate the feed is not refused: $out" ;;
esac
# what the gateway stores before payments-migrate runs
enqueue "$db_b" shop1 b1

out=$("$top/bin/payments-migrate" "$db_b" 2>&1) || { echo "$out"; bad "payments-migrate on B failed"; }
case $out in
    *"the events feed: 3012 notifications of 2 merchants renumbered"*)
        ok "payments-migrate renumbered 3012 notifications of 2 merchants" ;;
    *) bad "payments-migrate did not say it renumbered 3012 notifications of 2 merchants: $out" ;;
esac

check "B lists shop1's events as A did, then the one stored before payments-migrate" \
    "$shop1_a,b1" "$(feed "$db_b" shop1)"
check "B lists shop2's 3,000 events as A did" "$shop2_a" "$(feed "$db_b" shop2)"
check "a cursor A gave goes on from where it was" "$after_a2,b1" "$(feed "$db_b" shop1 "$cursor")"
check "the other endpoint's copy of that event is the same place" \
    "$after_a2,b1" "$(feed "$db_b" shop1 "$copy")"
enqueue "$db_b" shop1 b2
check "an event stored after payments-migrate follows" "$after_a2,b1,b2" \
    "$(feed "$db_b" shop1 "$cursor")"
check "nothing is left past B's transaction ids" 0 "$(past "$db_b")"
check "shop2's 3,000 places were written below B's ids, used up to past them" t \
    "$(q "$db_b" -c "SELECT max(feed_xact::text::bigint) = 3000 AND pg_current_xact_id() > '3000'
                      FROM notifications WHERE merchant_id = 'shop2'")"
check "the gateway's grants are restored" t \
    "$(q "$db_b" -c "SELECT has_function_privilege('payments_gateway',
                      'pay_list_events(text, text, text, integer)', 'EXECUTE')")"
out=$("$top/bin/payments-migrate" "$db_b" 2>&1) || bad "payments-migrate on B failed the second time"
case $out in
    *renumbered*) bad "a second payments-migrate renumbered again: $out" ;;
    *) ok "a second payments-migrate has nothing to renumber" ;;
esac

echo "restore: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
