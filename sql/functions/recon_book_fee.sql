CREATE OR REPLACE FUNCTION recon_book_fee(p_report bigint, r recon_rows, p_merchant text, p_checkout text, p_order text DEFAULT NULL::text)
 RETURNS void
 LANGUAGE plpgsql
 SET search_path TO 'public', 'pg_temp'
 SET jit TO 'off'
 SET enable_seqscan TO 'off'
AS $function$
DECLARE
    v_order  text := p_order;
    v_txn    bigint;
    v_psp    text;
BEGIN
    IF r.fee = 0 OR p_merchant IS NULL THEN
        RETURN;
    END IF;

    SELECT rp.psp INTO v_psp FROM recon_reports rp WHERE rp.report_id = p_report;

    IF v_order IS NULL AND p_checkout IS NOT NULL THEN
        SELECT o.payment_order_id INTO v_order FROM payment_orders o
         WHERE o.merchant_id = p_merchant AND o.checkout_id = p_checkout
         ORDER BY o.line_no LIMIT 1;
    END IF;

    INSERT INTO ledger_transactions (merchant_id, checkout_id, payment_order_id, source,
                                     kind, object_id)
    VALUES (p_merchant, CASE WHEN v_order IS NULL THEN NULL ELSE p_checkout END, v_order,
            'reconciliation:' || v_psp || ':' || r.row_id || ':fee', 'fee', r.row_id)
    RETURNING txn_id INTO v_txn;

    INSERT INTO ledger_entries (merchant_id, txn_id, entry_no, account, amount, currency)
    VALUES (p_merchant, v_txn, 1, 'psp_fees:' || v_psp, r.fee, r.net_currency),
           (p_merchant, v_txn, 2, 'psp_clearing:' || v_psp, -r.fee, r.net_currency);

    -- audited once per merchant and report at the end of recon_run
    INSERT INTO recon_mismatches (report_id, record, psp, class, kind, merchant_id,
                                  checkout_id, currency, amount, evidence)
    VALUES (p_report, r.record, v_psp, 'auto_fixed', 'fee_booked', p_merchant,
            p_checkout, r.net_currency, r.fee,
            jsonb_build_object('report_row', recon_row_json(r),
                'ours', jsonb_build_object('txn_id', v_txn,
                                           'account', 'psp_fees:' || v_psp),
                'ledger', jsonb_build_array(
                    jsonb_build_object('txn_id', v_txn, 'entry_no', 1,
                        'account', 'psp_fees:' || v_psp, 'amount', r.fee,
                        'currency', r.net_currency),
                    jsonb_build_object('txn_id', v_txn, 'entry_no', 2,
                        'account', 'psp_clearing:' || v_psp, 'amount', -r.fee,
                        'currency', r.net_currency))));
END
$function$;
REVOKE ALL ON FUNCTION recon_book_fee(p_report bigint, r recon_rows, p_merchant text, p_checkout text, p_order text) FROM PUBLIC;
