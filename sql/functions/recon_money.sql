CREATE OR REPLACE FUNCTION recon_money(p_report bigint, r recon_rows)
 RETURNS TABLE(outcome text, merchant_id text, checkout_id text)
 LANGUAGE plpgsql
 SET search_path TO 'public', 'pg_temp'
 SET jit TO 'off'
 SET enable_seqscan TO 'off'
AS $function$
#variable_conflict use_column
DECLARE
    v_psp     text;
    n         record;
    f         refunds%ROWTYPE;
    d         disputes%ROWTYPE;
    p         payouts%ROWTYPE;
    v_m       text;
    v_co      text;
    v_order   text;
    v_obj     text;
    v_j       jsonb;
    v_kind    text;
    v_class   text := 'needs_person';
    v_amount  bigint := r.gross;
    v_applied record;
    v_event   text;
    v_before  bigint;
    v_booked  bigint;
    -- the amount the row says moved: out for a refund or pay-out, back for
    -- its failure
    v_moved   bigint := CASE WHEN r.type IN ('refund_failure', 'payout_failure')
                             THEN r.gross ELSE -r.gross END;
BEGIN
    SELECT rp.psp INTO v_psp FROM recon_reports rp WHERE rp.report_id = p_report;
    SELECT * INTO n FROM nonce_split(nullif(r.reference, ''));

    IF r.type IN ('refund', 'refund_failure') THEN
        IF n.merchant_id IS NOT NULL THEN
            SELECT * INTO f FROM refunds rf
             WHERE rf.merchant_id = n.merchant_id AND rf.refund_id = n.object_id
               AND rf.psp = v_psp;
        END IF;
        IF f.refund_id IS NULL AND r.object_ref <> '' THEN
            SELECT * INTO f FROM refunds rf
             WHERE rf.psp = v_psp AND rf.psp_refund_id = r.object_ref;
        END IF;

        IF f.refund_id IS NULL THEN
            -- refunded at the PSP, not here: the payment's checkout, if known
            SELECT pp.merchant_id, pp.checkout_id INTO v_m, v_co FROM psp_payments pp
             WHERE pp.psp = v_psp AND pp.payment_ref = nullif(r.payment_ref, '');
            v_kind := r.type || '_unknown_here';
        ELSE
            v_m := f.merchant_id;
            v_co := f.checkout_id;
            v_order := f.payment_order_id;
            v_obj := f.refund_id;
            v_j := to_jsonb(f);
            IF r.type = 'refund' AND r.object_ref <> ''
               AND f.psp_refund_id IS NOT NULL AND r.object_ref <> f.psp_refund_id THEN
                -- another PSP refund than ours under our nonce: a second
                -- refund the PSP made (as the webhook's object_mismatch);
                -- never applied as ours
                v_kind := 'refund_object_differs';
            ELSIF f.currency <> r.currency AND r.customer_currency = f.currency THEN
                -- settled in another currency (Stripe's customer_facing_*):
                -- ours, not bookable without a conversion; a person's
                v_kind := r.type || '_settled_in_other_currency';
                v_j := v_j || jsonb_build_object('customer_amount', r.customer_amount,
                                                 'customer_currency', r.customer_currency);
            ELSIF f.currency <> r.currency OR f.amount <> v_moved THEN
                v_kind := 'refund_amount_differs';
                v_amount := v_moved - f.amount;
            ELSIF r.type = 'refund_failure' THEN
                IF f.status <> 'FAILED' THEN
                    v_event := 'REFUND_FAILED';
                END IF;
            ELSIF f.status = 'FAILED' THEN
                IF NOT recon_failure_shown(p_report, 'refund_failure', f.psp_refund_id,
                                           f.nonce, f.merchant_id, f.refund_id) THEN
                    v_kind := 'refund_failed_here';
                END IF;
            ELSIF f.status = 'PENDING' THEN
                v_event := 'REFUND_SUCCEEDED';
            END IF;
        END IF;

    ELSIF r.type IN ('dispute', 'dispute_won') THEN
        IF r.object_ref <> '' THEN
            SELECT * INTO d FROM disputes dd
             WHERE dd.psp = v_psp AND dd.psp_dispute_ref = r.object_ref;
        END IF;
        IF d.dispute_id IS NULL THEN
            SELECT pp.merchant_id, pp.checkout_id INTO v_m, v_co FROM psp_payments pp
             WHERE pp.psp = v_psp AND pp.payment_ref = nullif(r.payment_ref, '');
            v_kind := 'dispute_unknown_here';
        ELSE
            v_m := d.merchant_id;
            v_co := d.checkout_id;
            v_obj := d.dispute_id;
            v_j := to_jsonb(d);
            IF d.currency <> r.currency AND r.customer_currency = d.currency THEN
                v_kind := r.type || '_settled_in_other_currency';
                v_j := v_j || jsonb_build_object('customer_amount', r.customer_amount,
                                                 'customer_currency', r.customer_currency);
            ELSIF d.currency <> r.currency OR d.amount <> abs(r.gross) THEN
                v_kind := 'dispute_amount_differs';
                v_amount := abs(r.gross) - d.amount;
            ELSIF r.type = 'dispute_won' THEN
                -- the reversals the PSP reported of this dispute before this
                -- row (in any report, whatever became of them) against those
                -- its books show (ledger transactions of the dispute that
                -- gave psp_clearing:<psp> money back: one for each win): a
                -- reversal beyond them is money back that no ledger holds (a
                -- row the PSP booked twice, a win whose webhook was lost),
                -- for a person.  Counted, not read from the status: a
                -- dispute won and then lost again (Adyen's SecondChargeback)
                -- is LOST, and its ChargebackReversed is still booked
                SELECT count(*) INTO v_before
                  FROM recon_rows rr
                  JOIN recon_seen s ON s.psp = v_psp AND s.row_id = rr.row_id
                                   AND s.report_id = rr.report_id AND s.record = rr.record
                 WHERE rr.object_ref = r.object_ref AND rr.type = 'dispute_won'
                   AND rr.row_id <> r.row_id;
                SELECT count(DISTINCT t.source) INTO v_booked
                  FROM ledger_transactions t
                  JOIN ledger_entries e ON e.merchant_id = t.merchant_id AND e.txn_id = t.txn_id
                 WHERE t.merchant_id = d.merchant_id AND t.checkout_id = d.checkout_id
                   AND t.kind = 'dispute' AND t.object_id = d.dispute_id
                   AND e.account = 'psp_clearing:' || v_psp AND e.amount > 0;
                IF v_before >= v_booked THEN
                    v_kind := 'dispute_reversal_not_booked';
                    v_j := v_j || jsonb_build_object('reversals_reported', v_before + 1,
                                                     'reversals_booked', v_booked);
                END IF;
            ELSIF r.type = 'dispute' THEN
                -- the withdrawals the PSP reported of this dispute before
                -- this row (in any report, whatever became of them) against
                -- those its books show: a withdrawal beyond them is money
                -- the PSP took that no ledger holds (Adyen's
                -- SecondChargeback after a ChargebackReversed, its webhook
                -- lost): for a person, never matched, its fee with it
                SELECT count(*) INTO v_before
                  FROM recon_rows rr
                  JOIN recon_seen s ON s.psp = v_psp AND s.row_id = rr.row_id
                                   AND s.report_id = rr.report_id AND s.record = rr.record
                 WHERE rr.object_ref = r.object_ref AND rr.type = 'dispute'
                   AND rr.row_id <> r.row_id;
                SELECT count(DISTINCT t.source) INTO v_booked
                  FROM ledger_transactions t
                  JOIN ledger_entries e ON e.merchant_id = t.merchant_id AND e.txn_id = t.txn_id
                 WHERE t.merchant_id = d.merchant_id AND t.checkout_id = d.checkout_id
                   AND t.kind = 'dispute' AND t.object_id = d.dispute_id
                   AND e.account = 'psp_clearing:' || v_psp AND e.amount < 0;
                IF v_before >= v_booked THEN
                    v_kind := 'dispute_withdrawal_not_booked';
                    v_j := v_j || jsonb_build_object('withdrawals_reported', v_before + 1,
                                                     'withdrawals_booked', v_booked);
                END IF;
            END IF;
        END IF;

    ELSIF r.type IN ('payout', 'payout_failure') THEN
        IF n.merchant_id IS NOT NULL THEN
            SELECT * INTO p FROM payouts po
             WHERE po.merchant_id = n.merchant_id AND po.payout_id = n.object_id
               AND po.psp = v_psp;
        END IF;
        IF p.payout_id IS NULL AND r.object_ref <> '' THEN
            SELECT * INTO p FROM payouts po
             WHERE po.psp = v_psp AND po.psp_payout_id = r.object_ref;
        END IF;

        IF p.payout_id IS NULL THEN
            v_kind := r.type || '_unknown_here';
        ELSE
            v_m := p.merchant_id;
            v_obj := p.payout_id;
            v_j := to_jsonb(p);
            IF r.type = 'payout' AND r.object_ref <> ''
               AND p.psp_payout_id IS NOT NULL AND r.object_ref <> p.psp_payout_id THEN
                -- a second transfer under our nonce (the webhook's mismatch)
                v_kind := 'payout_object_differs';
            ELSIF r.type = 'payout_failure' AND p.currency = r.currency
                  AND r.gross > 0 AND r.gross < p.amount THEN
                -- part of the pay-out taken back (Stripe's partial transfer
                -- reversal, a row each): matched while the parts matched
                -- before and this one are within what the books took back
                -- (payouts.amount_reversed; all of it once FAILED)
                SELECT coalesce(sum(rr.gross), 0) INTO v_before
                  FROM recon_seen s
                  JOIN recon_rows rr ON rr.report_id = s.report_id AND rr.record = s.record
                 WHERE s.merchant_id = p.merchant_id AND s.object_id = p.payout_id
                   AND s.psp = v_psp AND s.row_id <> r.row_id
                   AND rr.type = 'payout_failure' AND rr.outcome IN ('matched', 'auto_fixed');
                IF v_before + r.gross > p.amount_reversed THEN
                    v_kind := 'payout_amount_differs';
                    v_amount := v_before + r.gross - p.amount_reversed;
                    v_j := v_j || jsonb_build_object('reversed_reported', v_before + r.gross);
                END IF;
            ELSIF p.currency <> r.currency OR p.amount <> v_moved THEN
                v_kind := 'payout_amount_differs';
                v_amount := v_moved - p.amount;
            ELSIF r.type = 'payout_failure' THEN
                IF p.status <> 'FAILED' THEN
                    v_event := 'PAYOUT_FAILED';
                END IF;
            ELSIF p.status = 'FAILED' THEN
                IF NOT recon_failure_shown(p_report, 'payout_failure', p.psp_payout_id,
                                           p.nonce, p.merchant_id, p.payout_id) THEN
                    v_kind := 'payout_failed_here';
                END IF;
            ELSIF p.status = 'PENDING' THEN
                v_event := 'PAYOUT_PAID';
            END IF;
        END IF;

    ELSE
        v_kind := r.type || '_reported';
    END IF;

    -- a gross with no exact value in ISO minor units (the PSP wrote 100.50
    -- ISK): compared rounded it could pass for ours; a person's, nothing
    -- applied nor booked (its object, when found, is shown by it)
    IF r.psp_gross <> '' THEN
        v_kind := 'gross_finer_than_iso';
        v_class := 'needs_person';
        v_event := NULL;
        v_amount := r.gross;
    END IF;

    IF v_obj IS NOT NULL THEN
        UPDATE recon_seen s SET object_id = v_obj
         WHERE s.psp = v_psp AND s.row_id = r.row_id;
        -- an earlier report's "missing at the PSP" of it was wrong
        UPDATE recon_mismatches m
           SET resolved_at = now(), resolution = 'found in report ' || p_report
         WHERE m.psp = v_psp AND m.kind IN ('refund_missing_at_psp', 'payout_missing_at_psp')
           AND m.resolved_at IS NULL AND m.merchant_id = v_m AND m.object_id = v_obj;
    END IF;

    -- a reversal an earlier report missed (its dispute_ or
    -- payout_reversal_missing_at_psp) is shown now: resolved when what
    -- the reports show reaches what the books hold (recon_run flags it
    -- again after this report's rows otherwise)
    IF r.type IN ('dispute_won', 'payout_failure') AND v_obj IS NOT NULL
       AND (v_kind IS NULL OR v_class = 'auto_fixed') THEN
        UPDATE recon_mismatches m
           SET resolved_at = now(), resolution = 'found in report ' || p_report
         WHERE m.psp = v_psp AND m.resolved_at IS NULL
           AND m.kind = CASE r.type WHEN 'dispute_won' THEN 'dispute_reversal_missing_at_psp'
                                    ELSE 'payout_reversal_missing_at_psp' END
           AND m.merchant_id = v_m AND m.object_id = v_obj;
    END IF;

    -- done at the PSP, not yet here: its webhook was lost; applied exactly
    -- as the webhook would be
    IF v_event IS NOT NULL THEN
        SELECT * INTO v_applied FROM pay_event_apply(v_psp, 'reconcile:' || r.row_id,
            v_event, 'reconciliation', NULL,
            CASE WHEN f.refund_id IS NOT NULL THEN f.nonce ELSE p.nonce END,
            v_moved, r.currency, nullif(r.payment_ref, ''),
            CASE WHEN f.refund_id IS NOT NULL
                 THEN coalesce(f.psp_refund_id, nullif(r.object_ref, ''))
                 ELSE coalesce(p.psp_payout_id, nullif(r.object_ref, '')) END,
            NULL) x;
        IF v_applied.outcome = 'applied' THEN
            v_class := 'auto_fixed';
            v_kind := r.type || '_webhook_missing';
            v_j := v_j || jsonb_build_object('was', coalesce(f.status, p.status),
                                             'event_id', 'reconcile:' || r.row_id);
        ELSE
            v_kind := r.type || '_webhook_apply_refused';
            v_j := v_j || jsonb_build_object('outcome', v_applied.outcome);
        END IF;
    END IF;

    -- the failure shown: a refund or pay-out flagged FAILED here by an
    -- earlier report was right after all
    IF r.type IN ('refund_failure', 'payout_failure') AND v_obj IS NOT NULL
       AND (v_kind IS NULL OR v_class = 'auto_fixed') THEN
        UPDATE recon_mismatches m
           SET resolved_at = now(),
               resolution = 'its failure is in report ' || p_report
         WHERE m.psp = v_psp AND m.kind IN ('refund_failed_here', 'payout_failed_here')
           AND m.resolved_at IS NULL AND m.merchant_id = v_m AND m.object_id = v_obj;
    END IF;

    IF v_kind IS NOT NULL THEN
        PERFORM recon_flag(p_report, r, v_class, v_kind, v_m, v_co,
            r.currency, v_amount, v_j);
        UPDATE recon_mismatches m SET object_id = v_obj
         WHERE m.report_id = p_report AND m.record = r.record AND m.kind = v_kind;
    END IF;

    IF v_class = 'needs_person' AND v_kind IS NOT NULL THEN
        RETURN QUERY SELECT 'needs_person'::text, v_m, v_co;
        RETURN;
    END IF;

    -- matched (or fixed): the PSP's fee of the row
    IF r.type IN ('refund', 'refund_failure', 'payout', 'payout_failure',
                  'dispute', 'dispute_won') THEN
        PERFORM recon_book_fee(p_report, r, v_m, v_co, v_order);
    END IF;

    RETURN QUERY SELECT CASE WHEN v_class = 'auto_fixed' OR r.fee <> 0
                             THEN 'auto_fixed' ELSE 'matched' END, v_m, v_co;
END
$function$;
REVOKE ALL ON FUNCTION recon_money(p_report bigint, r recon_rows) FROM PUBLIC;
