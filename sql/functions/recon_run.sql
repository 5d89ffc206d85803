CREATE OR REPLACE FUNCTION recon_run(p_report bigint)
 RETURNS void
 LANGUAGE plpgsql
 SET search_path TO 'public', 'pg_temp'
 SET jit TO 'off'
 SET enable_seqscan TO 'off'
AS $function$
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

    -- Dispute reversals missing at the PSP: a dispute a row of this report
    -- matched whose books show more wins (ledger transactions of it that
    -- gave psp_clearing:<psp> money back) than all reports together showed
    -- reversal rows of it (dispute_won, first seen): money back in the
    -- books that the PSP's balance never got.  Resolved when a later
    -- report shows the reversal (recon_money).
    FOR c IN
        SELECT d.*, x.booked, x.reported
          FROM (SELECT DISTINCT s.merchant_id, s.object_id
                  FROM recon_seen s
                  JOIN recon_rows rr ON rr.report_id = s.report_id AND rr.record = s.record
                 WHERE s.report_id = p_report AND s.psp = v_psp
                   AND rr.type IN ('dispute', 'dispute_won')
                   AND s.object_id IS NOT NULL) sd
          JOIN disputes d ON d.merchant_id = sd.merchant_id AND d.dispute_id = sd.object_id
         CROSS JOIN LATERAL (
            SELECT (SELECT count(DISTINCT t.source)
                      FROM ledger_transactions t
                      JOIN ledger_entries e ON e.merchant_id = t.merchant_id
                                           AND e.txn_id = t.txn_id
                     WHERE t.merchant_id = d.merchant_id AND t.checkout_id = d.checkout_id
                       AND t.kind = 'dispute' AND t.object_id = d.dispute_id
                       AND e.account = 'psp_clearing:' || v_psp AND e.amount > 0) AS booked,
                   (SELECT count(*)
                      FROM recon_seen s2
                      JOIN recon_rows rr2 ON rr2.report_id = s2.report_id
                                         AND rr2.record = s2.record
                     WHERE s2.psp = v_psp AND s2.merchant_id = d.merchant_id
                       AND s2.object_id = d.dispute_id
                       AND rr2.type = 'dispute_won') AS reported) x
         WHERE x.booked > x.reported
           AND NOT EXISTS (SELECT 1 FROM recon_mismatches m
                            WHERE m.kind = 'dispute_reversal_missing_at_psp'
                              AND m.resolved_at IS NULL
                              AND m.merchant_id = d.merchant_id
                              AND m.object_id = d.dispute_id)
         ORDER BY d.merchant_id, d.dispute_id
    LOOP
        INSERT INTO recon_mismatches (report_id, record, psp, class, kind, merchant_id,
                                      checkout_id, object_id, currency, amount, evidence)
        VALUES (p_report, NULL, v_psp, 'needs_person', 'dispute_reversal_missing_at_psp',
                c.merchant_id, c.checkout_id, c.dispute_id, c.currency,
                c.amount * (c.booked - c.reported),
                jsonb_build_object('report_row', NULL,
                    'ours', to_jsonb(c) - 'booked' - 'reported'
                            || jsonb_build_object('reversals_booked', c.booked,
                                                  'reversals_reported', c.reported),
                    'ledger', recon_ledger_json(c.merchant_id, c.checkout_id)));
    END LOOP;

    -- Pay-out reversals missing at the PSP: a pay-out a row of this report
    -- matched whose books took back more (payouts.amount_reversed: what
    -- Stripe reversed in parts, all of it once returned or failed after it
    -- was paid) than all reports together showed matched reversal rows of
    -- it (payout_failure, first seen): money back in the wallet that the
    -- PSP's balance never got.  Resolved when a later report shows it
    -- (recon_money).
    FOR c IN
        SELECT po.*, x.reported
          FROM (SELECT DISTINCT s.merchant_id, s.object_id
                  FROM recon_seen s
                  JOIN recon_rows rr ON rr.report_id = s.report_id AND rr.record = s.record
                 WHERE s.report_id = p_report AND s.psp = v_psp
                   AND rr.type IN ('payout', 'payout_failure')
                   AND s.object_id IS NOT NULL) sp
          JOIN payouts po ON po.merchant_id = sp.merchant_id AND po.payout_id = sp.object_id
         CROSS JOIN LATERAL (
            SELECT coalesce(sum(rr2.gross), 0) AS reported
              FROM recon_seen s2
              JOIN recon_rows rr2 ON rr2.report_id = s2.report_id AND rr2.record = s2.record
             WHERE s2.psp = v_psp AND s2.merchant_id = po.merchant_id
               AND s2.object_id = po.payout_id AND rr2.type = 'payout_failure'
               AND rr2.outcome IN ('matched', 'auto_fixed')) x
         WHERE po.amount_reversed > x.reported
           AND NOT EXISTS (SELECT 1 FROM recon_mismatches m
                            WHERE m.kind = 'payout_reversal_missing_at_psp'
                              AND m.resolved_at IS NULL
                              AND m.merchant_id = po.merchant_id
                              AND m.object_id = po.payout_id)
         ORDER BY po.merchant_id, po.payout_id
    LOOP
        INSERT INTO recon_mismatches (report_id, record, psp, class, kind, merchant_id,
                                      checkout_id, object_id, currency, amount, evidence)
        VALUES (p_report, NULL, v_psp, 'needs_person', 'payout_reversal_missing_at_psp',
                c.merchant_id, NULL, c.payout_id, c.currency,
                c.amount_reversed - c.reported,
                jsonb_build_object('report_row', NULL,
                    'ours', to_jsonb(c) - 'reported'
                            || jsonb_build_object('reversed_reported', c.reported),
                    'ledger', '[]'::jsonb));
    END LOOP;

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
$function$;
REVOKE ALL ON FUNCTION recon_run(p_report bigint) FROM PUBLIC;
