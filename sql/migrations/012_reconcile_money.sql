-- Reconciliation against the money after "paid" (sql/009_money.sql):
-- refunds, disputes and pay-outs matched for real, their lost webhooks
-- applied, the PSP's fees in transactions of their own kind, and the
-- internal checks with 009's ledger kinds (doc/RECONCILIATION.md).
--
-- 011 was written before 009 and guarded its matchers with to_regclass();
-- 011 is applied history, so this migration replaces its functions.
--
-- Matching, per row type:
--   payment   checkout by our nonce, else psp_payments (psp, payment_ref):
--             Stripe's payment_intent_id, Adyen's pspReference, generic
--             payment_ref
--   refund    refunds by our nonce (<merchant>:<refund_id>), else by
--             (psp, psp_refund_id)
--   dispute   disputes by (psp, psp_dispute_ref); an unknown one's
--             checkout by psp_payments (psp, payment_ref)
--   payout    payouts by our nonce (<merchant>:<payout_id>), else by
--             (psp, psp_payout_id)
--
-- New kinds:
--   auto_fixed    rounding_booked (a payment one minor unit off: the
--                 remainder to psp_rounding:<psp>, out of psp_clearing),
--                 refund_webhook_missing, payout_webhook_missing (PENDING
--                 here, done at the PSP: applied through pay_event_apply
--                 exactly as the webhook would, event id reconcile:<row>)
--   needs_person  refund_failed_here, payout_failed_here (done at the PSP,
--                 FAILED here), refund_missing_at_psp, payout_missing_at_psp,
--                 payment_booked_twice (check), *_apply_refused

-- ---------------------------------------------------------------------------
-- Fees are ledger transactions of their own kind: a payment's, a refund's
-- or a pay-out's fee is never "a second payment transaction" of its order.
-- A pay-out's fee belongs to no order.
ALTER TABLE ledger_transactions DROP CONSTRAINT IF EXISTS ledger_transactions_kind;
ALTER TABLE ledger_transactions ADD CONSTRAINT ledger_transactions_kind
    CHECK (kind IN ('payment', 'refund', 'dispute', 'payout', 'fee'));
ALTER TABLE ledger_transactions DROP CONSTRAINT IF EXISTS ledger_transactions_owner;
ALTER TABLE ledger_transactions ADD CONSTRAINT ledger_transactions_owner
    CHECK (((kind = 'payout') = (payment_order_id IS NULL) OR kind = 'fee')
           AND (payment_order_id IS NULL) = (checkout_id IS NULL)
           AND (kind = 'payment' OR object_id IS NOT NULL));

-- The object a report row matched (rf_…, dp_…, pyo_…): what "missing at
-- the PSP" looks for among refunds and pay-outs.
ALTER TABLE recon_seen ADD COLUMN IF NOT EXISTS object_id text;
CREATE INDEX IF NOT EXISTS recon_seen_object ON recon_seen (merchant_id, object_id)
    WHERE object_id IS NOT NULL;
ALTER TABLE recon_mismatches ADD COLUMN IF NOT EXISTS object_id text;

INSERT INTO ledger_accounts (account, description) VALUES
    ('psp_rounding:*', 'rounding remainders of one minor unit between a PSP''s settled '
                       'gross and ours, booked by payments-reconcile')
ON CONFLICT (account) DO NOTHING;

CREATE INDEX IF NOT EXISTS refunds_psp_created ON refunds (psp, created_at);
CREATE INDEX IF NOT EXISTS payouts_psp_created ON payouts (psp, created_at);

-- ---------------------------------------------------------------------------
-- The PSP's fee of a row: psp_fees:<psp> debited, psp_clearing:<psp>
-- credited (a rebate the other way), kind 'fee', object the row's id;
-- on the order given (a refund's), else the checkout's first order, else
-- none (a pay-out's).

DROP FUNCTION IF EXISTS recon_book_fee(bigint, recon_rows, text, text);
CREATE OR REPLACE FUNCTION recon_book_fee(p_report bigint, r recon_rows,
    p_merchant text, p_checkout text, p_order text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql SET search_path = public, pg_temp SET enable_seqscan = off AS $$
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
$$;

-- ---------------------------------------------------------------------------
-- A payment row: by our nonce, else by the PSP's payment id.

CREATE OR REPLACE FUNCTION recon_payment(p_report bigint, r recon_rows)
RETURNS TABLE(outcome text, merchant_id text, checkout_id text)
LANGUAGE plpgsql SET search_path = public, pg_temp SET enable_seqscan = off AS $$
#variable_conflict use_column
DECLARE
    v_psp      text;
    c          checkouts%ROWTYPE;
    v_found    boolean := false;
    v_applied  record;
    v_round    bigint := 0;
    v_txn      bigint;
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
        -- the moves' source saying reconciliation
        PERFORM set_config('payments.event_source', 'reconciliation', true);
        SELECT * INTO v_applied FROM pay_event_apply(v_psp, 'reconcile:' || r.row_id,
            'SUCCEEDED', 'reconciliation', NULL, c.nonce, c.amount_total, r.currency,
            nullif(r.payment_ref, ''), NULL) x;
        PERFORM set_config('payments.event_source', '', true);

        IF v_applied.outcome = 'applied' THEN
            PERFORM recon_flag(p_report, r, 'auto_fixed', 'webhook_missing',
                c.merchant_id, c.checkout_id, r.currency, r.gross,
                recon_checkout_json(c.merchant_id, c.checkout_id)
                    || jsonb_build_object('was', c.status, 'event_id', 'reconcile:' || r.row_id));
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

    RETURN QUERY SELECT CASE WHEN c.status <> 'SUCCESS' OR r.fee <> 0 OR v_round <> 0
                             THEN 'auto_fixed' ELSE 'matched' END,
                        c.merchant_id, c.checkout_id;
END
$$;

-- ---------------------------------------------------------------------------
-- Refunds, disputes, pay-outs and their failures.

CREATE OR REPLACE FUNCTION recon_money(p_report bigint, r recon_rows)
RETURNS TABLE(outcome text, merchant_id text, checkout_id text)
LANGUAGE plpgsql SET search_path = public, pg_temp SET enable_seqscan = off AS $$
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
BEGIN
    SELECT rp.psp INTO v_psp FROM recon_reports rp WHERE rp.report_id = p_report;
    SELECT * INTO n FROM nonce_split(nullif(r.reference, ''));

    IF r.type = 'refund' THEN
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
            v_kind := 'refund_unknown_here';
        ELSE
            v_m := f.merchant_id;
            v_co := f.checkout_id;
            v_order := f.payment_order_id;
            v_obj := f.refund_id;
            v_j := to_jsonb(f);
            IF f.currency <> r.currency OR f.amount <> -r.gross THEN
                v_kind := 'refund_amount_differs';
                v_amount := -r.gross - f.amount;
            ELSIF f.status = 'FAILED' THEN
                v_kind := 'refund_failed_here';
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
            IF d.currency <> r.currency OR d.amount <> abs(r.gross) THEN
                v_kind := 'dispute_amount_differs';
                v_amount := abs(r.gross) - d.amount;
            ELSIF r.type = 'dispute_won' AND d.status <> 'WON' THEN
                v_kind := 'dispute_status_differs';
            END IF;
        END IF;

    ELSIF r.type = 'payout' THEN
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
            v_kind := 'payout_unknown_here';
        ELSE
            v_m := p.merchant_id;
            v_obj := p.payout_id;
            v_j := to_jsonb(p);
            IF p.currency <> r.currency OR p.amount <> -r.gross THEN
                v_kind := 'payout_amount_differs';
                v_amount := -r.gross - p.amount;
            ELSIF p.status = 'FAILED' THEN
                v_kind := 'payout_failed_here';
            ELSIF p.status = 'PENDING' THEN
                v_event := 'PAYOUT_PAID';
            END IF;
        END IF;

    ELSE
        v_kind := r.type || '_reported';   -- refund_failure, payout_failure
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

    -- done at the PSP, PENDING here: its webhook was lost; applied exactly
    -- as the webhook would be
    IF v_event IS NOT NULL THEN
        SELECT * INTO v_applied FROM pay_event_apply(v_psp, 'reconcile:' || r.row_id,
            v_event, 'reconciliation', NULL,
            CASE WHEN r.type = 'refund' THEN f.nonce ELSE p.nonce END,
            -r.gross, r.currency, nullif(r.payment_ref, ''),
            CASE WHEN r.type = 'refund' THEN coalesce(f.psp_refund_id, nullif(r.object_ref, ''))
                 ELSE coalesce(p.psp_payout_id, nullif(r.object_ref, '')) END) x;
        IF v_applied.outcome = 'applied' THEN
            v_class := 'auto_fixed';
            v_kind := r.type || '_webhook_missing';
            v_j := v_j || jsonb_build_object('was', 'PENDING',
                                             'event_id', 'reconcile:' || r.row_id);
        ELSE
            v_kind := r.type || '_webhook_apply_refused';
            v_j := v_j || jsonb_build_object('outcome', v_applied.outcome);
        END IF;
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
    IF r.type IN ('refund', 'payout', 'dispute', 'dispute_won') THEN
        PERFORM recon_book_fee(p_report, r, v_m, v_co, v_order);
    END IF;

    RETURN QUERY SELECT CASE WHEN v_class = 'auto_fixed' OR r.fee <> 0
                             THEN 'auto_fixed' ELSE 'matched' END, v_m, v_co;
END
$$;

-- ---------------------------------------------------------------------------
-- The run: as 011's, and then the refunds and pay-outs the PSP should have
-- had.

CREATE OR REPLACE FUNCTION recon_run(p_report bigint)
RETURNS void
LANGUAGE plpgsql SET search_path = public, pg_temp SET enable_seqscan = off AS $$
DECLARE
    r       recon_rows%ROWTYPE;
    v_psp   text;
    v       record;
    v_from  timestamptz;
    v_to    timestamptz;
    c       record;
BEGIN
    SELECT rp.psp INTO v_psp FROM recon_reports rp WHERE rp.report_id = p_report;

    FOR r IN SELECT * FROM recon_rows rr WHERE rr.report_id = p_report ORDER BY rr.record LOOP
        INSERT INTO recon_seen (psp, row_id, report_id, record)
        VALUES (v_psp, r.row_id, p_report, r.record)
        ON CONFLICT (psp, row_id) DO NOTHING;

        IF NOT FOUND THEN
            UPDATE recon_rows rr SET outcome = 'seen_before'
             WHERE rr.report_id = p_report AND rr.record = r.record;
            CONTINUE;
        END IF;

        IF r.type = 'payment' THEN
            SELECT * INTO v FROM recon_payment(p_report, r) x;
        ELSIF r.type IN ('refund', 'refund_failure', 'dispute', 'dispute_won',
                         'payout', 'payout_failure') THEN
            SELECT * INTO v FROM recon_money(p_report, r) x;
        ELSIF r.type = 'bank_payout' THEN
            SELECT 'not_ours'::text AS outcome, NULL::text AS merchant_id,
                   NULL::text AS checkout_id INTO v;
        ELSIF r.type = 'fee' THEN
            PERFORM recon_flag(p_report, r, 'needs_person', 'fee_without_payment',
                NULL, NULL, r.net_currency, r.fee, NULL);
            SELECT 'needs_person'::text AS outcome, NULL::text AS merchant_id,
                   NULL::text AS checkout_id INTO v;
        ELSE
            PERFORM recon_flag(p_report, r, 'unclassified', 'unknown_row_type',
                NULL, NULL, r.currency, r.gross, NULL);
            SELECT 'unclassified'::text AS outcome, NULL::text AS merchant_id,
                   NULL::text AS checkout_id INTO v;
        END IF;

        UPDATE recon_rows rr
           SET outcome = v.outcome, merchant_id = v.merchant_id, checkout_id = v.checkout_id
         WHERE rr.report_id = p_report AND rr.record = r.record;
        -- a checkout is "shown" by its payment's row only: a refund of a
        -- payment the report left out does not hide the payment missing
        UPDATE recon_seen s
           SET merchant_id = v.merchant_id,
               checkout_id = CASE WHEN r.type = 'payment' THEN v.checkout_id END
         WHERE s.psp = v_psp AND s.row_id = r.row_id;
    END LOOP;

    -- Missing at the PSP: a checkout paid here, of this PSP, registered
    -- between the first and the last checkout this report matched, that no
    -- report (this one or an earlier one) ever showed.
    SELECT min(ck.created_at), max(ck.created_at) INTO v_from, v_to
      FROM recon_rows rr
      JOIN checkouts ck ON ck.merchant_id = rr.merchant_id AND ck.checkout_id = rr.checkout_id
     WHERE rr.report_id = p_report AND rr.type = 'payment';

    IF v_from IS NOT NULL THEN
        FOR c IN
            SELECT ck.merchant_id, ck.checkout_id, ck.amount_total, ck.currency
              FROM checkouts ck
             WHERE ck.psp = v_psp AND ck.status = 'SUCCESS'
               AND ck.created_at BETWEEN v_from AND v_to
               AND NOT EXISTS (SELECT 1 FROM recon_seen s
                                WHERE s.merchant_id = ck.merchant_id
                                  AND s.checkout_id = ck.checkout_id)
               AND NOT EXISTS (SELECT 1 FROM recon_mismatches m
                                WHERE m.kind = 'missing_at_psp' AND m.resolved_at IS NULL
                                  AND m.merchant_id = ck.merchant_id
                                  AND m.checkout_id = ck.checkout_id)
             ORDER BY ck.created_at, ck.merchant_id, ck.checkout_id
        LOOP
            INSERT INTO recon_mismatches (report_id, record, psp, class, kind, merchant_id,
                                          checkout_id, currency, amount, evidence)
            VALUES (p_report, NULL, v_psp, 'needs_person', 'missing_at_psp', c.merchant_id,
                    c.checkout_id, c.currency, c.amount_total,
                    jsonb_build_object('report_row', NULL,
                        'ours', recon_checkout_json(c.merchant_id, c.checkout_id),
                        'ledger', recon_ledger_json(c.merchant_id, c.checkout_id)));
        END LOOP;
    END IF;

    -- Refunds missing at the PSP: SUCCEEDED here, of this PSP, created
    -- between the first and the last refund this report matched, never in
    -- a report.
    SELECT min(f.created_at), max(f.created_at) INTO v_from, v_to
      FROM recon_seen s
      JOIN refunds f ON f.merchant_id = s.merchant_id AND f.refund_id = s.object_id
     WHERE s.report_id = p_report AND s.psp = v_psp;

    IF v_from IS NOT NULL THEN
        FOR c IN
            SELECT f.* FROM refunds f
             WHERE f.psp = v_psp AND f.status = 'SUCCEEDED'
               AND f.created_at BETWEEN v_from AND v_to
               AND NOT EXISTS (SELECT 1 FROM recon_seen s
                                WHERE s.merchant_id = f.merchant_id
                                  AND s.object_id = f.refund_id)
               AND NOT EXISTS (SELECT 1 FROM recon_mismatches m
                                WHERE m.kind = 'refund_missing_at_psp' AND m.resolved_at IS NULL
                                  AND m.merchant_id = f.merchant_id
                                  AND m.object_id = f.refund_id)
             ORDER BY f.created_at, f.merchant_id, f.refund_id
        LOOP
            INSERT INTO recon_mismatches (report_id, record, psp, class, kind, merchant_id,
                                          checkout_id, object_id, currency, amount, evidence)
            VALUES (p_report, NULL, v_psp, 'needs_person', 'refund_missing_at_psp',
                    c.merchant_id, c.checkout_id, c.refund_id, c.currency, c.amount,
                    jsonb_build_object('report_row', NULL, 'ours', to_jsonb(c),
                        'ledger', recon_ledger_json(c.merchant_id, c.checkout_id)));
        END LOOP;
    END IF;

    -- Pay-outs missing at the PSP: PAID here, likewise.
    SELECT min(po.created_at), max(po.created_at) INTO v_from, v_to
      FROM recon_seen s
      JOIN payouts po ON po.merchant_id = s.merchant_id AND po.payout_id = s.object_id
     WHERE s.report_id = p_report AND s.psp = v_psp;

    IF v_from IS NOT NULL THEN
        FOR c IN
            SELECT po.* FROM payouts po
             WHERE po.psp = v_psp AND po.status = 'PAID'
               AND po.created_at BETWEEN v_from AND v_to
               AND NOT EXISTS (SELECT 1 FROM recon_seen s
                                WHERE s.merchant_id = po.merchant_id
                                  AND s.object_id = po.payout_id)
               AND NOT EXISTS (SELECT 1 FROM recon_mismatches m
                                WHERE m.kind = 'payout_missing_at_psp' AND m.resolved_at IS NULL
                                  AND m.merchant_id = po.merchant_id
                                  AND m.object_id = po.payout_id)
             ORDER BY po.created_at, po.merchant_id, po.payout_id
        LOOP
            INSERT INTO recon_mismatches (report_id, record, psp, class, kind, merchant_id,
                                          checkout_id, object_id, currency, amount, evidence)
            VALUES (p_report, NULL, v_psp, 'needs_person', 'payout_missing_at_psp',
                    c.merchant_id, NULL, c.payout_id, c.currency, c.amount,
                    jsonb_build_object('report_row', NULL, 'ours', to_jsonb(c),
                        'ledger', '[]'::jsonb));
        END LOOP;
    END IF;

    -- the fees booked, in each merchant's audit chain: one row per report
    FOR c IN
        SELECT m.merchant_id,
               jsonb_agg(jsonb_build_object('currency', m.currency, 'count', m.n,
                                            'amount', m.amount) ORDER BY m.currency) AS fees
          FROM (SELECT mm.merchant_id, mm.currency, count(*) AS n, sum(mm.amount) AS amount
                  FROM recon_mismatches mm
                 WHERE mm.report_id = p_report AND mm.kind = 'fee_booked'
                 GROUP BY 1, 2) m
         GROUP BY 1 ORDER BY 1
    LOOP
        PERFORM audit_append(c.merchant_id, NULL, 'reconcile:fees_booked',
            jsonb_build_object('psp', v_psp, 'report_id', p_report, 'fees', c.fees,
                               'account', 'psp_fees:' || v_psp));
    END LOOP;

    UPDATE recon_reports rp SET finished_at = now() WHERE rp.report_id = p_report;
END
$$;

-- ---------------------------------------------------------------------------
-- Internal checks with 009's ledger: a SUCCESS order has exactly one
-- payment transaction (its refunds', disputes' and fees' are of their own
-- kinds; fees 011 booked before this migration are kind payment with a
-- source ending ":fee", and are left out); no other order has any
-- transaction at all.

CREATE OR REPLACE FUNCTION recon_checks(p_report bigint)
RETURNS int
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
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
            x.currency, x.wallet - x.ledger,
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
                                               AND lt.source NOT LIKE 'reconciliation:%:fee')
                                AS payments,
                            count(*) AS total
                       FROM ledger_transactions lt
                      WHERE lt.payment_order_id IS NOT NULL
                      GROUP BY 1, 2) t
            ON t.merchant_id = o.merchant_id AND t.payment_order_id = o.payment_order_id
         WHERE (o.status = 'SUCCESS' AND coalesce(t.payments, 0) <> 1)
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
         GROUP BY 1, 2, 3, 4, 5
        HAVING sum(f.amount) > o.amount
    LOOP
        PERFORM recon_check_flag(p_report, 'refunds_exceed_capture', x.merchant_id,
            x.checkout_id, x.currency, x.refunded - x.amount,
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
$$;

REVOKE ALL ON FUNCTION
    recon_book_fee(bigint, recon_rows, text, text, text),
    recon_payment(bigint, recon_rows),
    recon_money(bigint, recon_rows),
    recon_run(bigint),
    recon_checks(bigint)
    FROM PUBLIC;
