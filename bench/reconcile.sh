#!/usr/bin/env bash
# Reconciliation throughput: rows reconciled per second by payments-reconcile
# on a generated generic-dialect report (`make bench-reconcile`; a line of
# its own, kept out of `make bench`'s long run).
#
#   bench/reconcile.sh [ROWS]      default 100000 (BENCH_RECON_ROWS)
#
# A throwaway PostgreSQL (ci/pg.sh) gets ROWS checkouts of one merchant on
# one PSP, 90 % already paid and booked (ledger, wallets) as webhooks book
# them, 10 % still EXECUTING (their webhooks lost).  The report has a row
# per checkout (fee 2.9 % + 0.30), 1 % of them with another amount, plus
# 1 % unknown rows.  One run of the tool: every row matched, a fee booked
# for each paid one, the lost webhooks applied through pay_event_apply,
# the rest classified, the internal checks; then the same file again (a
# no-op).  Prints rows/s of the first run.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
rows=${1:-${BENCH_RECON_ROWS:-100000}}
build=${BUILD:-build}

make -s "$build/payments-reconcile"

run=$(mktemp -d /tmp/ngx-payments-bench-recon.XXXXXX)
chmod 755 "$run"
trap 'bash ci/pg.sh stop "$run/pg" >/dev/null 2>&1 || true; rm -rf "$run"' EXIT
mkdir -p "$run/pg"
chmod 755 "$run/pg"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
db=$(bash ci/pg.sh start "$run/pg" "$port" | tail -n 1)

psql "$db" -Xq -v ON_ERROR_STOP=1 -v rows="$rows" <<'SQL'
INSERT INTO merchants (merchant_id, mode) VALUES ('bench', 'test');
INSERT INTO checkouts (merchant_id, checkout_id, psp, nonce, currency, amount_total,
                       success_url, cancel_url, status, psp_request, expires_at)
SELECT 'bench', 'co_' || i, 'bench_psp', 'bench:co_' || i, 'EUR', 1000 + i % 500,
       'https://shop.example/ok', 'https://shop.example/no', 'EXECUTING', '{}',
       now() + interval '1 day'
  FROM generate_series(1, :rows) i;
INSERT INTO payment_orders (merchant_id, payment_order_id, checkout_id, line_no,
                            seller_account, amount, currency, status)
SELECT 'bench', 'po_' || i, 'co_' || i, 1, 'seller_' || i % 100, 1000 + i % 500, 'EUR',
       'EXECUTING'
  FROM generate_series(1, :rows) i;
BEGIN;
UPDATE checkouts SET status = 'SUCCESS'
 WHERE merchant_id = 'bench' AND substr(checkout_id, 4)::int % 10 <> 0;
UPDATE payment_orders SET status = 'SUCCESS', ledger_updated = true, wallet_updated = true
 WHERE merchant_id = 'bench' AND substr(checkout_id, 4)::int % 10 <> 0;
INSERT INTO ledger_transactions (merchant_id, checkout_id, payment_order_id, source)
SELECT merchant_id, checkout_id, payment_order_id, 'webhook:bench_psp:bench'
  FROM payment_orders WHERE merchant_id = 'bench' AND status = 'SUCCESS';
INSERT INTO ledger_entries (merchant_id, txn_id, entry_no, account, amount, currency)
SELECT t.merchant_id, t.txn_id, 1, 'psp_clearing:bench_psp', o.amount, o.currency
  FROM ledger_transactions t JOIN payment_orders o USING (merchant_id, payment_order_id)
 WHERE t.merchant_id = 'bench'
UNION ALL
SELECT t.merchant_id, t.txn_id, 2, 'seller_payable:' || o.seller_account, -o.amount, o.currency
  FROM ledger_transactions t JOIN payment_orders o USING (merchant_id, payment_order_id)
 WHERE t.merchant_id = 'bench';
INSERT INTO wallets_folded (merchant_id, seller_account, currency, balance)
SELECT merchant_id, seller_account, currency, sum(amount)
  FROM payment_orders WHERE merchant_id = 'bench' AND status = 'SUCCESS'
 GROUP BY 1, 2, 3;
COMMIT;
ANALYZE;
SQL

report=$run/report.csv
awk -v n="$rows" 'BEGIN {
    print "reference,psp_ref,type,gross,fee,net,currency,date,payment_ref";
    for (i = 1; i <= n; i++) {
        g = 1000 + i % 500;
        if (i % 100 == 7) g += 1;                 # 1 %: another amount
        f = int(g * 29 / 1000) + 30;
        printf "bench:co_%d,pay_%d,payment,%d.%02d,%d.%02d,%d.%02d,EUR,2026-11-20,\n",
            i, i, g / 100, g % 100, f / 100, f % 100, (g - f) / 100, (g - f) % 100;
        if (i % 100 == 50)                        # 1 %: unknown rows
            printf "zz:unknown_%d,unk_%d,payment,1.00,0.00,1.00,EUR,2026-11-20,\n", i, i;
    }
}' >"$report"
lines=$(($(wc -l <"$report") - 1))

start=$(date +%s.%N)
rc=0
"$build/payments-reconcile" --db "$db" --psp bench_psp --dialect generic "$report" \
    >"$run/out.txt" 2>&1 || rc=$?
end=$(date +%s.%N)
[ "$rc" -le 1 ] || { cat "$run/out.txt" >&2; exit 1; }
cat "$run/out.txt"

start2=$(date +%s.%N)
"$build/payments-reconcile" --db "$db" --psp bench_psp --dialect generic "$report" \
    >"$run/out2.txt" 2>&1 || true
end2=$(date +%s.%N)
grep -q "nothing done" "$run/out2.txt" || { cat "$run/out2.txt" >&2; exit 1; }

awk -v n="$lines" -v a="$start" -v b="$end" -v c="$start2" -v d="$end2" 'BEGIN {
    printf "reconcile: %d rows in %.2f s: %.0f rows/s (the same file again: %.2f s, nothing done)\n",
        n, b - a, n / (b - a), d - c }'
