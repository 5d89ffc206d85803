CREATE OR REPLACE FUNCTION recon_payment(p_report bigint, r recon_rows)
 RETURNS TABLE(outcome text, merchant_id text, checkout_id text)
 LANGUAGE plpgsql
 SET search_path TO 'public', 'pg_temp'
 SET enable_seqscan TO 'off'
AS $function$
#variable_conflict use_column
DECLARE
    v_psp      text;
    c          checkouts%ROWTYPE;
    v_found    boolean := false;
    v_applied  record;
    v_round    bigint := 0;
    v_txn      bigint;
    v_person   boolean := false;
BEGIN
    SELECT rp.psp INTO v_psp FROM recon_reports rp WHERE rp.report_id = p_report;

    IF r.reference <> '' AND position(':' IN r.reference) > 0 THEN
        SELECT * INTO c FROM checkouts ck
         WHERE ck.merchant_id = split_part(r.reference, ':', 1)
           AND ck.checkout_id = substr(r.reference,
                                       length(split_part(r.reference, ':', 1)) + 2)
           AND ck.nonce = r.reference AND ck.psp = v_psp;
        v_found := FOUND;
    END IF;

    IF NOT v_found AND r.payment_ref <> '' THEN
        SELECT ck.* INTO c FROM psp_payments pp
          JOIN checkouts ck ON ck.merchant_id = pp.merchant_id
                           AND ck.checkout_id = pp.checkout_id
         WHERE pp.psp = v_psp AND pp.payment_ref = r.payment_ref;
        v_found := FOUND;
    END IF;

    IF NOT v_found THEN
        PERFORM recon_flag(p_report, r, 'unclassified', 'unknown_payment', NULL, NULL,
            r.currency, r.gross, NULL);
        RETURN QUERY SELECT 'unclassified'::text, NULL::text, NULL::text;
        RETURN;
    END IF;

    -- another payment than the one booked for this checkout, under our
    -- reference: a second payment the PSP took (as a webhook naming it is
    -- mismatch); nothing of it is booked, a person refunds one
    IF r.payment_ref <> '' AND c.psp_payment_ref IS NOT NULL
       AND r.payment_ref <> c.psp_payment_ref THEN
        PERFORM recon_flag(p_report, r, 'needs_person', 'payment_differs',
            c.merchant_id, c.checkout_id, r.currency, r.gross,
            recon_checkout_json(c.merchant_id, c.checkout_id)
                || jsonb_build_object('booked_payment_ref', c.psp_payment_ref));
        RETURN QUERY SELECT 'needs_person'::text, c.merchant_id, c.checkout_id;
        RETURN;
    END IF;

    IF r.currency <> c.currency THEN
        PERFORM recon_flag(p_report, r, 'needs_person', 'currency_differs',
            c.merchant_id, c.checkout_id, r.currency, r.gross,
            recon_checkout_json(c.merchant_id, c.checkout_id));
        RETURN QUERY SELECT 'needs_person'::text, c.merchant_id, c.checkout_id;
        RETURN;
    END IF;

    -- one minor unit off: a rounding remainder (an FX conversion, a
    -- per-line rounding at the PSP), booked and otherwise matched
    IF abs(r.gross - c.amount_total) = 1 THEN
        v_round := r.gross - c.amount_total;
    ELSIF r.gross <> c.amount_total THEN
        PERFORM recon_flag(p_report, r, 'needs_person', 'amount_differs',
            c.merchant_id, c.checkout_id, r.currency, r.gross - c.amount_total,
            recon_checkout_json(c.merchant_id, c.checkout_id));
        RETURN QUERY SELECT 'needs_person'::text, c.merchant_id, c.checkout_id;
        RETURN;
    END IF;

    IF c.status = 'FAILED' THEN
        PERFORM recon_flag(p_report, r, 'needs_person', 'paid_but_failed_here',
            c.merchant_id, c.checkout_id, r.currency, r.gross,
            recon_checkout_json(c.merchant_id, c.checkout_id));
        RETURN QUERY SELECT 'needs_person'::text, c.merchant_id, c.checkout_id;
        RETURN;
    END IF;

    IF c.status <> 'SUCCESS' THEN
        -- paid at the PSP, its webhook never arrived: applied exactly as the
        -- webhook would be (pay_event_apply: the payment's id noted too),
        -- the moves' source saying reconciliation.  A settlement row is
        -- money the PSP captured: CAPTURED, which books it whatever the
        -- stored capture mode (SUCCEEDED would only hold a manual-capture
        -- checkout, and its hold would later be released, the money never
        -- booked); a manual-capture checkout so paid is a person's too
        PERFORM set_config('payments.event_source', 'reconciliation', true);
        SELECT * INTO v_applied FROM pay_event_apply(v_psp, 'reconcile:' || r.row_id,
            'CAPTURED', 'reconciliation', NULL, c.nonce, c.amount_total, r.currency,
            nullif(r.payment_ref, ''), NULL, NULL) x;
        PERFORM set_config('payments.event_source', '', true);

        IF v_applied.outcome = 'applied' THEN
            PERFORM recon_flag(p_report, r, 'auto_fixed', 'webhook_missing',
                c.merchant_id, c.checkout_id, r.currency, r.gross,
                recon_checkout_json(c.merchant_id, c.checkout_id)
                    || jsonb_build_object('was', c.status, 'event_id', 'reconcile:' || r.row_id));
        ELSIF v_applied.outcome = 'captured_for_manual' THEN
            -- booked; the shop asked to capture it itself, and cannot now
            PERFORM recon_flag(p_report, r, 'needs_person', 'captured_for_manual',
                c.merchant_id, c.checkout_id, r.currency, r.gross,
                recon_checkout_json(c.merchant_id, c.checkout_id)
                    || jsonb_build_object('was', c.status, 'event_id', 'reconcile:' || r.row_id));
            v_person := true;
        ELSE
            PERFORM recon_flag(p_report, r, 'needs_person', 'webhook_apply_refused',
                c.merchant_id, c.checkout_id, r.currency, r.gross,
                recon_checkout_json(c.merchant_id, c.checkout_id)
                    || jsonb_build_object('outcome', v_applied.outcome));
            RETURN QUERY SELECT 'needs_person'::text, c.merchant_id, c.checkout_id;
            RETURN;
        END IF;
    END IF;

    -- an earlier report's missing_at_psp for this checkout was wrong
    UPDATE recon_mismatches m
       SET resolved_at = now(), resolution = 'found in report ' || p_report
     WHERE m.psp = v_psp AND m.kind = 'missing_at_psp' AND m.resolved_at IS NULL
       AND m.merchant_id = c.merchant_id AND m.checkout_id = c.checkout_id;

    IF v_round <> 0 THEN
        v_txn := ledger_book(c.merchant_id, c.checkout_id,
            (SELECT o.payment_order_id FROM payment_orders o
              WHERE o.merchant_id = c.merchant_id AND o.checkout_id = c.checkout_id
              ORDER BY o.line_no LIMIT 1),
            'fee', r.row_id, 'reconciliation:' || v_psp || ':' || r.row_id || ':rounding',
            r.currency, ARRAY['psp_clearing:' || v_psp, 'psp_rounding:' || v_psp],
            ARRAY[v_round, -v_round]);
        PERFORM recon_flag(p_report, r, 'auto_fixed', 'rounding_booked',
            c.merchant_id, c.checkout_id, r.currency, v_round,
            jsonb_build_object('txn_id', v_txn, 'account', 'psp_rounding:' || v_psp,
                               'amount_total', c.amount_total));
    END IF;

    PERFORM recon_book_fee(p_report, r, c.merchant_id, c.checkout_id);

    RETURN QUERY SELECT CASE WHEN v_person THEN 'needs_person'
                             WHEN c.status <> 'SUCCESS' OR r.fee <> 0 OR v_round <> 0
                             THEN 'auto_fixed' ELSE 'matched' END,
                        c.merchant_id, c.checkout_id;
END
$function$;
REVOKE ALL ON FUNCTION recon_payment(p_report bigint, r recon_rows) FROM PUBLIC;
