CREATE OR REPLACE FUNCTION recon_checks(p_report bigint)
 RETURNS integer
 LANGUAGE plpgsql
 SET search_path TO 'public', 'pg_temp'
AS $function$
DECLARE
    x    record;
    n    int := 0;
BEGIN
    -- every wallet equals its ledger sum (seller_payable is credited: negative)
    FOR x IN
        SELECT coalesce(w.merchant_id, l.merchant_id) AS merchant_id,
               coalesce(w.seller_account, l.seller) AS seller,
               coalesce(w.currency, l.currency) AS currency,
               coalesce(w.balance, 0) AS wallet, coalesce(l.total, 0) AS ledger
          FROM wallets w
          FULL JOIN (SELECT e.merchant_id, substr(e.account, 16) AS seller, e.currency,
                            -sum(e.amount) AS total
                       FROM ledger_entries e
                      WHERE e.account LIKE 'seller\_payable:%'
                      GROUP BY 1, 2, 3) l
            ON l.merchant_id = w.merchant_id AND l.seller = w.seller_account
           AND l.currency = w.currency
         WHERE coalesce(w.balance, 0) <> coalesce(l.total, 0)
    LOOP
        PERFORM recon_check_flag(p_report, 'wallet_ledger_differs', x.merchant_id, NULL,
            x.currency, (x.wallet - x.ledger)::bigint,
            jsonb_build_object('seller_account', x.seller, 'wallet', x.wallet,
                               'ledger', x.ledger));
        n := n + 1;
    END LOOP;

    FOR x IN
        SELECT o.merchant_id, o.checkout_id, o.payment_order_id, o.status, o.amount,
               o.currency, coalesce(t.payments, 0) AS payments, coalesce(t.total, 0) AS total
          FROM payment_orders o
          LEFT JOIN (SELECT lt.merchant_id, lt.payment_order_id,
                            count(*) FILTER (WHERE lt.kind = 'payment'
                                               AND lt.source NOT LIKE 'reconciliation:%:fee'
                                               -- a capture the PSP took back: its
                                               -- booking and the reversal net to nought
                                               AND NOT EXISTS (
                                                   SELECT 1 FROM captures cx
                                                    WHERE cx.merchant_id = lt.merchant_id
                                                      AND cx.capture_id = lt.object_id
                                                      AND cx.status = 'FAILED'))
                                AS payments,
                            count(*) AS total
                       FROM ledger_transactions lt
                      WHERE lt.payment_order_id IS NOT NULL
                      GROUP BY 1, 2) t
            ON t.merchant_id = o.merchant_id AND t.payment_order_id = o.payment_order_id
         -- an automatic order is booked once; a manual-capture one once
         -- per capture that succeeded
         WHERE (o.status = 'SUCCESS'
                AND coalesce(t.payments, 0)
                    <> CASE WHEN o.amount_captured IS NULL THEN 1
                            ELSE (SELECT count(*) FROM captures cx
                                   WHERE cx.merchant_id = o.merchant_id
                                     AND cx.payment_order_id = o.payment_order_id
                                     AND cx.kind = 'capture'
                                     AND cx.status = 'SUCCEEDED') END)
            OR (o.status <> 'SUCCESS' AND coalesce(t.total, 0) > 0)
    LOOP
        PERFORM recon_check_flag(p_report,
            CASE WHEN x.status <> 'SUCCESS' THEN 'ledger_on_unpaid_order'
                 WHEN x.payments = 0 THEN 'success_order_without_ledger'
                 ELSE 'payment_booked_twice' END,
            x.merchant_id, x.checkout_id, x.currency, x.amount,
            jsonb_build_object('payment_order_id', x.payment_order_id, 'status', x.status,
                               'payment_transactions', x.payments,
                               'transactions', x.total));
        n := n + 1;
    END LOOP;

    -- refunds never exceed captures (the PENDING ones are reserved)
    FOR x IN
        SELECT o.merchant_id, o.checkout_id, o.payment_order_id, o.amount, o.currency,
               sum(f.amount) AS refunded
          FROM refunds f
          JOIN payment_orders o ON o.merchant_id = f.merchant_id
                               AND o.payment_order_id = f.payment_order_id
         WHERE f.status IN ('SUCCEEDED', 'PENDING')
         GROUP BY 1, 2, 3, 4, 5, o.amount_captured
        HAVING sum(f.amount) > coalesce(o.amount_captured, o.amount)
    LOOP
        PERFORM recon_check_flag(p_report, 'refunds_exceed_capture', x.merchant_id,
            x.checkout_id, x.currency, (x.refunded - x.amount)::bigint,
            jsonb_build_object('payment_order_id', x.payment_order_id,
                               'captured', x.amount, 'refunded', x.refunded));
        n := n + 1;
    END LOOP;

    -- the audit chains verify
    FOR x IN SELECT m.merchant_id FROM merchants m ORDER BY 1 LOOP
        IF NOT pay_audit_verify(x.merchant_id) THEN
            PERFORM recon_check_flag(p_report, 'audit_chain_broken', x.merchant_id,
                NULL, NULL, NULL, jsonb_build_object('merchant_id', x.merchant_id));
            n := n + 1;
        END IF;
    END LOOP;

    RETURN n;
END
$function$;
REVOKE ALL ON FUNCTION recon_checks(p_report bigint) FROM PUBLIC;
