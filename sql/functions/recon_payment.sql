CREATE OR REPLACE FUNCTION recon_payment(p_report bigint, r recon_rows)
 RETURNS TABLE(outcome text, merchant_id text, checkout_id text)
 LANGUAGE plpgsql
 SET search_path TO 'public', 'pg_temp'
 SET jit TO 'off'
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
    v_expect   bigint;
    v_left     bigint;
    v_capture  text;
    v_whole    bigint;
    v_captured boolean := false;
    v_other    text;
    v_order    text;
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

    -- a gross with no exact value in ISO minor units (the PSP wrote 100.50
    -- ISK): no amount of ours is it, and rounding would make it one; a
    -- person's, nothing matched nor booked (the checkout, when found, is
    -- shown by it: not also missing at the PSP)
    IF r.psp_gross <> '' THEN
        PERFORM recon_flag(p_report, r, 'needs_person', 'gross_finer_than_iso',
            c.merchant_id, c.checkout_id, r.currency, r.gross,
            CASE WHEN v_found
                 THEN recon_checkout_json(c.merchant_id, c.checkout_id) END);
        RETURN QUERY SELECT 'needs_person'::text, c.merchant_id, c.checkout_id;
        RETURN;
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

    -- booked without the PSP's payment id (a sweeper's booking whose
    -- lookup listed no payment): a row naming another payment than the
    -- one an earlier row of this checkout matched is that second payment
    IF r.payment_ref <> '' AND c.psp_payment_ref IS NULL THEN
        SELECT rr.payment_ref INTO v_other FROM recon_seen s
          JOIN recon_rows rr ON rr.report_id = s.report_id AND rr.record = s.record
         WHERE s.merchant_id = c.merchant_id AND s.checkout_id = c.checkout_id
           AND s.psp = v_psp AND s.row_id <> r.row_id AND rr.type = 'payment'
           AND rr.outcome IN ('matched', 'auto_fixed')
           AND rr.payment_ref <> '' AND rr.payment_ref <> r.payment_ref
         ORDER BY rr.report_id, rr.record LIMIT 1;
        IF v_other IS NOT NULL THEN
            PERFORM recon_flag(p_report, r, 'needs_person', 'payment_differs',
                c.merchant_id, c.checkout_id, r.currency, r.gross,
                recon_checkout_json(c.merchant_id, c.checkout_id)
                    || jsonb_build_object('matched_payment_ref', v_other));
            RETURN QUERY SELECT 'needs_person'::text, c.merchant_id, c.checkout_id;
            RETURN;
        END IF;
    END IF;

    -- settled in another currency than the customer paid in (Stripe
    -- reports every row in the account's settlement currency; its
    -- customer_facing_* columns say what the customer paid): the payment
    -- is ours, but the ledger has no conversion to book (the payment is
    -- in the checkout's currency, the PSP's gross and fee in another), so
    -- a person books it, the conversion and the fee; nothing applied nor
    -- booked here.  Another currency without that: currency_differs
    IF r.currency <> c.currency THEN
        PERFORM recon_flag(p_report, r, 'needs_person',
            CASE WHEN r.customer_currency = c.currency
                 THEN 'settled_in_other_currency' ELSE 'currency_differs' END,
            c.merchant_id, c.checkout_id, r.currency, r.gross,
            recon_checkout_json(c.merchant_id, c.checkout_id)
                || CASE WHEN r.customer_currency = c.currency
                        THEN jsonb_build_object('customer_amount', r.customer_amount,
                                 'customer_currency', r.customer_currency,
                                 'customer_amount_less_total',
                                 r.customer_amount - c.amount_total)
                        ELSE '{}'::jsonb END);
        RETURN QUERY SELECT 'needs_person'::text, c.merchant_id, c.checkout_id;
        RETURN;
    END IF;

    -- what the row must show: the checkout's total, or for a paid checkout
    -- captured in parts (manual capture) what the books show captured.  A
    -- PSP settles each capture in a row of its own (Adyen) or the payment
    -- once (Stripe, one capture): the row matches a capture (the orders'
    -- parts one PSP capture made, by its PSP id) that no earlier row
    -- matched, else all of them when no earlier row matched any; the
    -- capture matched is the row's object in recon_seen, a row matching
    -- all has none
    v_expect := c.amount_total;
    IF c.status = 'SUCCESS' THEN
        SELECT count(*) > 0 INTO v_captured FROM captures cp
         WHERE cp.checkout_id = c.checkout_id AND cp.merchant_id = c.merchant_id
           AND cp.kind = 'capture' AND cp.status = 'SUCCEEDED';
    END IF;
    IF v_captured THEN
        v_expect := NULL;
        WITH parts AS (
            SELECT min(cp.capture_id) AS capture_id, sum(cp.amount)::bigint AS amount
              FROM captures cp
             WHERE cp.checkout_id = c.checkout_id AND cp.merchant_id = c.merchant_id
               AND cp.kind = 'capture' AND cp.status = 'SUCCEEDED'
             GROUP BY coalesce(cp.psp_ref, cp.capture_id)),
        earlier AS (
            SELECT s.object_id FROM recon_seen s
              JOIN recon_rows rr ON rr.report_id = s.report_id AND rr.record = s.record
             WHERE s.merchant_id = c.merchant_id AND s.checkout_id = c.checkout_id
               AND s.psp = v_psp AND s.row_id <> r.row_id AND rr.type = 'payment'
               AND rr.outcome IN ('matched', 'auto_fixed')),
        open_parts AS (
            SELECT pa.* FROM parts pa
             WHERE NOT EXISTS (SELECT 1 FROM earlier e
                                WHERE e.object_id IS NULL OR e.object_id = pa.capture_id))
        SELECT (SELECT coalesce(sum(op.amount), 0) FROM open_parts op),
               (SELECT op.capture_id FROM open_parts op
                 WHERE abs(op.amount - r.gross) <= 1
                 ORDER BY abs(op.amount - r.gross), op.capture_id LIMIT 1),
               (SELECT op.amount FROM open_parts op
                 WHERE abs(op.amount - r.gross) <= 1
                 ORDER BY abs(op.amount - r.gross), op.capture_id LIMIT 1),
               (SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM earlier)
                            THEN sum(pa.amount) END FROM parts pa)::bigint
          INTO v_left, v_capture, v_expect, v_whole;
        IF v_capture IS NULL AND abs(r.gross - v_whole) <= 1 THEN
            v_expect := v_whole;        -- every capture in one row
        END IF;
        IF v_expect IS NULL THEN
            PERFORM recon_flag(p_report, r, 'needs_person', 'amount_differs',
                c.merchant_id, c.checkout_id, r.currency, r.gross - v_left,
                recon_checkout_json(c.merchant_id, c.checkout_id));
            RETURN QUERY SELECT 'needs_person'::text, c.merchant_id, c.checkout_id;
            RETURN;
        END IF;
        IF v_capture IS NOT NULL THEN
            UPDATE recon_seen s SET object_id = v_capture
             WHERE s.psp = v_psp AND s.row_id = r.row_id;
        END IF;
    END IF;

    -- one minor unit off: a rounding remainder (an FX conversion, a
    -- per-line rounding at the PSP), booked and otherwise matched
    IF abs(r.gross - v_expect) = 1 THEN
        v_round := r.gross - v_expect;
    ELSIF r.gross <> v_expect THEN
        PERFORM recon_flag(p_report, r, 'needs_person', 'amount_differs',
            c.merchant_id, c.checkout_id, r.currency, r.gross - v_expect,
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

    -- the order the row's fee and remainder are booked on: the one the
    -- capture it matched was made for, else the checkout's first order
    -- paid (a manual checkout's first order may be left authorized or
    -- voided: a ledger transaction there is one on an unpaid order), else
    -- its first
    SELECT o.payment_order_id INTO v_order FROM payment_orders o
     WHERE o.merchant_id = c.merchant_id AND o.checkout_id = c.checkout_id
     ORDER BY o.payment_order_id IS DISTINCT FROM
                  (SELECT cp.payment_order_id FROM captures cp
                    WHERE cp.merchant_id = c.merchant_id
                      AND cp.capture_id = v_capture),
              o.status <> 'SUCCESS', o.line_no
     LIMIT 1;

    IF v_round <> 0 THEN
        v_txn := ledger_book(c.merchant_id, c.checkout_id, v_order,
            'fee', r.row_id, 'reconciliation:' || v_psp || ':' || r.row_id || ':rounding',
            r.currency, ARRAY['psp_clearing:' || v_psp, 'psp_rounding:' || v_psp],
            ARRAY[v_round, -v_round]);
        PERFORM recon_flag(p_report, r, 'auto_fixed', 'rounding_booked',
            c.merchant_id, c.checkout_id, r.currency, v_round,
            jsonb_build_object('txn_id', v_txn, 'account', 'psp_rounding:' || v_psp,
                               'amount_total', c.amount_total));
    END IF;

    PERFORM recon_book_fee(p_report, r, c.merchant_id, c.checkout_id, v_order);

    RETURN QUERY SELECT CASE WHEN v_person THEN 'needs_person'
                             WHEN c.status <> 'SUCCESS' OR r.fee <> 0 OR v_round <> 0
                             THEN 'auto_fixed' ELSE 'matched' END,
                        c.merchant_id, c.checkout_id;
END
$function$;
REVOKE ALL ON FUNCTION recon_payment(p_report bigint, r recon_rows) FROM PUBLIC;
