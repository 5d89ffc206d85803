#!/usr/bin/env bash
# The event inbox's bytes per paid checkout (doc/OPERATIONS.md, "The event
# inbox": the numbers and the retention arithmetic come from this).
#
#   bash bench/inbox_bytes.sh [N]     (N paid checkouts per case, default 10000)
#
# A throwaway cluster (ci/pg.sh), the schema as payments-migrate makes it,
# then per case N checkouts' events kept as the gateway keeps them, one
# month's partition: psp_events' heap, TOAST and indexes measured with
# pg_total_relation_size after VACUUM, divided by N; and the events' ids,
# which psp_events' trigger writes into psp_event_ids (unpartitioned, one
# row per event): its table (pg_table_size) and its key's index, then the
# total of both tables.  The rows are written straight into psp_events
# (what pay_event_keep writes, applied), with bodies of the sizes each case
# says:
#   stripe-bench   one checkout.session.completed as bench/sign_events.c
#                  and the mock send it (~390 bytes), its Stripe-Signature
#   stripe-real    one checkout.session.completed of Stripe's own size
#                  (a full Checkout Session object: ~3 KB of JSON; TOAST
#                  compresses it) plus payment_intent.succeeded and
#                  charge.succeeded (~2.5 KB each), kept though ignored,
#                  as an endpoint subscribed to them receives; the filler
#                  is hex digits, which compress worse than Stripe's JSON
#                  (an upper bound)
#   adyen          one AUTHORISATION item kept alone, with the
#                  additionalData Adyen adds (~850 bytes), its HMAC inside
#   generic        one payment.succeeded (~250 bytes) with its ES256 JWT
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
n=${1:-10000}
dir=$(mktemp -d /tmp/ngx-payments-inbox-bytes.XXXXXX)
chmod 755 "$dir"
port=$(( 20000 + RANDOM % 20000 ))
trap 'bash "$top/ci/pg.sh" stop "$dir" >/dev/null 2>&1 || true; rm -rf "$dir"' EXIT

db=$(bash "$top/ci/pg.sh" start "$dir" "$port" | tail -1)

measure() {  # measure NAME SQL-OF-ONE-CHECKOUT'S-ROWS (uses g)
    psql "$db" -XAtq -v ON_ERROR_STOP=1 -v n="$n" <<SQL
TRUNCATE psp_events;
SELECT pay_inbox_partitions(1);
INSERT INTO psp_events (psp, event_id, state, body, headers, key_id, kind, type,
                        token, reference, amount, currency, payment_ref,
                        outcome, merchant_id, checkout_id, applied_at)
$2;
VACUUM ANALYZE psp_events;
VACUUM ANALYZE psp_event_ids;
SELECT '$1',
       (SELECT count(*) FROM psp_events) / :n,
       sum(pg_relation_size(c.oid))::bigint / :n,
       sum(pg_total_relation_size(c.oid) - pg_relation_size(c.oid)
           - pg_indexes_size(c.oid))::bigint / :n,
       sum(pg_indexes_size(c.oid))::bigint / :n,
       pg_table_size('psp_event_ids') / :n,
       pg_indexes_size('psp_event_ids') / :n,
       (sum(pg_total_relation_size(c.oid))::bigint
        + pg_total_relation_size('psp_event_ids')) / :n
  FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
 WHERE i.inhparent = 'psp_events'::regclass;
SQL
}

# a JSON-like filler of len bytes that compresses as JSON does (not a run
# of one letter): words from the row's own ids
fill='(SELECT string_agg(md5(g::text || x::text), '"'"'","'"'"') FROM generate_series(1, $1) x)'

big="CASE t WHEN 'checkout.session.completed' THEN 90 ELSE 75 END"
stripe_fill=${fill//\$1/$big}

stripe_hdr="jsonb_build_object('Stripe-Signature', 't=1764000000,v1=' || encode(sha256(g::text::bytea), 'hex'))"

printf '%-13s %7s %9s %9s %9s %9s %9s %9s\n' case events heap toast indexes \
    ids ids_key total
{
measure stripe-bench "SELECT 'stripe', 'evt_bench_m1_co' || g, 'applied',
       convert_to('{\"id\":\"evt_bench_m_1_co' || g || '\",\"object\":\"event\",\"type\":\"checkout.session.completed\",\"created\":1764000000,\"livemode\":false,\"data\":{\"object\":{\"id\":\"cs_test_' || md5(g::text) || '\",\"object\":\"checkout.session\",\"client_reference_id\":\"m_1:co' || g || '\",\"amount_total\":1500,\"currency\":\"usd\",\"payment_intent\":\"pi_bench_m_1_co' || g || '\",\"payment_status\":\"paid\",\"status\":\"complete\"}}}', 'UTF8'),
       $stripe_hdr, 'sha256:0123456789abcdef', 'CAPTURED', 'checkout.session.completed',
       'cs_test_' || md5(g::text), 'm_1:co' || g, 1500, 'USD', 'pi_bench_m_1_co' || g,
       'applied', 'm_1', 'co' || g, now()
  FROM generate_series(1, :n) g"

measure stripe-real "SELECT 'stripe', 'evt_' || md5(g::text || t), 'applied',
       convert_to('{\"id\":\"evt_' || md5(g::text || t) || '\",\"type\":\"' || t || '\",\"data\":{\"object\":{\"client_reference_id\":\"m_1:co' || g || '\",\"x\":[\"' || $stripe_fill || '\"]}}}', 'UTF8'),
       $stripe_hdr, 'sha256:0123456789abcdef',
       CASE t WHEN 'checkout.session.completed' THEN 'CAPTURED' ELSE 'IGNORED' END, t,
       'cs_test_' || md5(g::text), 'm_1:co' || g, 1500, 'USD', 'pi_' || md5(g::text),
       CASE t WHEN 'checkout.session.completed' THEN 'applied' ELSE 'ignored' END,
       'm_1', 'co' || g, now()
  FROM generate_series(1, :n) g,
       unnest(ARRAY['checkout.session.completed', 'payment_intent.succeeded',
                    'charge.succeeded']) t"

measure adyen "SELECT 'adyen', '88' || lpad(g::text, 14, '0') || ':AUTHORISATION', 'applied',
       convert_to('{\"NotificationRequestItem\":{\"additionalData\":{\"hmacSignature\":\"' || encode(sha256(g::text::bytea), 'base64') || '\",\"authCode\":\"058705\",\"cardSummary\":\"1111\",\"expiryDate\":\"03/2030\",\"paymentMethodVariant\":\"visa\",\"checkoutSessionId\":\"CS' || upper(md5(g::text)) || '\"},\"amount\":{\"currency\":\"USD\",\"value\":1500},\"eventCode\":\"AUTHORISATION\",\"eventDate\":\"2026-11-22T10:00:00+01:00\",\"merchantAccountCode\":\"TestMerchant\",\"merchantReference\":\"m_1:co' || g || '\",\"operations\":[\"CANCEL\",\"CAPTURE\",\"REFUND\"],\"originalReference\":\"\",\"paymentMethod\":\"visa\",\"pspReference\":\"' || '88' || lpad(g::text, 14, '0') || '\",\"reason\":\"058705:1111:03/2030\",\"success\":\"true\"}}', 'UTF8'),
       '{}'::jsonb, 'sha256:0123456789abcdef', 'SUCCEEDED', 'AUTHORISATION', NULL, 'm_1:co' || g,
       1500, 'USD', '88' || lpad(g::text, 14, '0'), 'applied', 'm_1', 'co' || g, now()
  FROM generate_series(1, :n) g"

measure generic "SELECT 'generic', 'gev_' || md5(g::text), 'applied',
       convert_to('{\"event_id\":\"gev_' || md5(g::text) || '\",\"type\":\"payment.succeeded\",\"reference\":\"m_1:co' || g || '\",\"token\":\"tok_' || md5(g::text) || '\",\"amount\":\"15.00\",\"currency\":\"USD\",\"payment_id\":\"pay_' || md5(g::text) || '\"}', 'UTF8'),
       jsonb_build_object('Payments-Verification', 'eyJhbGciOiJFUzI1NiIsImtpZCI6Im1vY2stZXMyNTYiLCJ0eXAiOiJKV1QifQ.' || encode(convert_to('{\"iat\":1764000000,\"request_body_sha256\":\"' || encode(sha256(g::text::bytea), 'hex') || '\"}', 'UTF8'), 'base64') || '.' || encode(sha256(g::text::bytea), 'base64') || encode(sha256((g + 1)::text::bytea), 'base64')),
       'mock-es256', 'SUCCEEDED', 'payment.succeeded', 'tok_' || md5(g::text), 'm_1:co' || g,
       1500, 'USD', 'pay_' || md5(g::text), 'applied', 'm_1', 'co' || g, now()
  FROM generate_series(1, :n) g"
} | tr '|' ' ' | while read -r name ev heap toast idx ids ids_key total; do
    [ -n "$total" ] || continue
    printf '%-13s %7s %9s %9s %9s %9s %9s %9s\n' "$name" "$ev" "$heap" "$toast" \
        "$idx" "$ids" "$ids_key" "$total"
done
echo "(bytes per paid checkout, $n checkouts per case; PostgreSQL $(psql "$db" -XAtq -c 'SHOW server_version'))"
