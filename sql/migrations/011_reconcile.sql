-- Reconciliation: a PSP's settlement report against the ledger
-- (bin/payments-reconcile.c, doc/RECONCILIATION.md).
--
-- The tool, in ONE transaction per report:
--   SELECT recon_begin(psp, dialect, sha256, file, rows)   -> report_id, or NULL
--   COPY recon_rows (report_id, record, ...) FROM STDIN        -- the parsed rows
--   SELECT recon_run(report_id)                            -- match, fix, classify
--   SELECT recon_checks(report_id)                         -- internal checks
--   SELECT * FROM recon_summary(report_id)
-- A report is known by the sha256 of its bytes: a second run of the same
-- file finds it and writes nothing.  A row is known by (psp, row_id): a row
-- already reconciled through another report (a weekly file overlapping the
-- dailies, reports arriving out of order) is recorded as seen, not redone.
--
-- Mismatch classes:
--   auto_fixed     fixed in the same transaction with balanced ledger entries:
--                  fee_booked (the PSP's fee to psp_fees:<psp>, out of
--                  psp_clearing:<psp>), webhook_missing (paid at the PSP,
--                  EXECUTING here: applied through pay_webhook_apply exactly
--                  as the webhook would, source reconciliation)
--   needs_person   classified, left to a person: missing_at_psp,
--                  amount_differs, currency_differs, paid_but_failed_here,
--                  refund_unknown_here, refund_amount_differs,
--                  refund_not_succeeded_here, dispute_unknown_here,
--                  dispute_amount_differs, dispute_status_differs,
--                  payout_unknown_here, payout_amount_differs,
--                  payout_not_paid_here, refund_failure_reported,
--                  payout_failure_reported, fee_without_payment, and the
--                  internal checks' wallet_ledger_differs,
--                  success_order_without_ledger, ledger_on_unpaid_order,
--                  refunds_exceed_capture, audit_chain_broken
--   unclassified   unknown_payment (a payment row naming nothing of ours),
--                  unknown_row_type (a PSP row type we have no rule for)
--
-- The refunds, disputes and pay-outs tables come with sql/009_money.sql; the
-- matchers that read them run only when to_regclass() finds them (PL/pgSQL
-- resolves a table when a statement first runs, not when the function is
-- created), and checkouts.psp_payment_ref is used only when the column
-- exists.

-- ---------------------------------------------------------------------------
-- Tables

CREATE TABLE IF NOT EXISTS recon_reports (
    report_id    bigserial   PRIMARY KEY,
    psp          text        NOT NULL CONSTRAINT recon_reports_psp
                             CHECK (psp ~ '^[A-Za-z0-9_.-]{1,32}$'),
    dialect      text        NOT NULL CONSTRAINT recon_reports_dialect
                             CHECK (dialect IN ('stripe', 'adyen', 'generic')),
    sha256       text        NOT NULL CONSTRAINT recon_reports_sha256
                             CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    file_name    text        NOT NULL CONSTRAINT recon_reports_file
                             CHECK (length(file_name) <= 1000),
    row_count    int         NOT NULL CONSTRAINT recon_reports_rows CHECK (row_count >= 0),
    started_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,
    CONSTRAINT recon_reports_sha256_key UNIQUE (sha256)
);

-- One row per data row of a report, as the parser normalised it (amounts in
-- ISO minor units).  outcome: what the run made of it.
CREATE TABLE IF NOT EXISTS recon_rows (
    report_id     bigint      NOT NULL REFERENCES recon_reports,
    record        int         NOT NULL CONSTRAINT recon_rows_record CHECK (record >= 2),
    row_id        text        NOT NULL CONSTRAINT recon_rows_row_id CHECK (length(row_id) BETWEEN 1 AND 255),
    type          text        NOT NULL CONSTRAINT recon_rows_type
                              CHECK (type IN ('payment', 'refund', 'refund_failure', 'dispute',
                                              'dispute_won', 'payout', 'payout_failure', 'fee',
                                              'bank_payout', 'other')),
    psp_type      text        NOT NULL DEFAULT '',
    payment_ref   text        NOT NULL DEFAULT '',
    object_ref    text        NOT NULL DEFAULT '',
    reference     text        NOT NULL DEFAULT '',
    currency      text        NOT NULL CONSTRAINT recon_rows_currency CHECK (currency ~ '^[A-Z]{3}$'),
    gross         bigint      NOT NULL,
    fee           bigint      NOT NULL,
    net           bigint      NOT NULL,
    net_currency  text        NOT NULL CONSTRAINT recon_rows_net_currency CHECK (net_currency ~ '^[A-Z]{3}$'),
    booked_on     text        NOT NULL DEFAULT '',
    outcome       text        CONSTRAINT recon_rows_outcome
                              CHECK (outcome IN ('matched', 'auto_fixed', 'needs_person',
                                                 'unclassified', 'seen_before', 'not_ours')),
    merchant_id   text,
    checkout_id   text,
    PRIMARY KEY (report_id, record)
);

-- The first report that reconciled each PSP row.
CREATE TABLE IF NOT EXISTS recon_seen (
    psp          text        NOT NULL,
    row_id       text        NOT NULL,
    report_id    bigint      NOT NULL REFERENCES recon_reports,
    record       int         NOT NULL,
    merchant_id  text,
    checkout_id  text,
    PRIMARY KEY (psp, row_id)
);
CREATE INDEX IF NOT EXISTS recon_seen_checkout ON recon_seen (merchant_id, checkout_id);

CREATE TABLE IF NOT EXISTS recon_mismatches (
    mismatch_id  bigserial   PRIMARY KEY,
    report_id    bigint      NOT NULL REFERENCES recon_reports,
    record       int,        -- NULL: not a row of the report (missing at the PSP, a check)
    psp          text        NOT NULL,
    class        text        NOT NULL CONSTRAINT recon_mismatches_class
                             CHECK (class IN ('auto_fixed', 'needs_person', 'unclassified')),
    kind         text        NOT NULL CONSTRAINT recon_mismatches_kind CHECK (kind ~ '^[a-z_]{1,60}$'),
    merchant_id  text,
    checkout_id  text,
    currency     text        CONSTRAINT recon_mismatches_currency CHECK (currency ~ '^[A-Z]{3}$'),
    amount       bigint,     -- ISO minor units: the fee booked, the difference, the row's gross
    evidence     jsonb       NOT NULL,  -- {"report_row": …, "ledger": […], "ours": …}
    created_at   timestamptz NOT NULL DEFAULT now(),
    resolved_at  timestamptz,
    resolution   text        CONSTRAINT recon_mismatches_resolution CHECK (length(resolution) <= 1000)
);
CREATE INDEX IF NOT EXISTS recon_mismatches_report ON recon_mismatches (report_id, class);
CREATE INDEX IF NOT EXISTS recon_mismatches_open ON recon_mismatches (psp, kind, merchant_id, checkout_id)
    WHERE resolved_at IS NULL;

-- The evidence of a mismatch lists the ledger rows of its checkout.
CREATE INDEX IF NOT EXISTS ledger_transactions_checkout
    ON ledger_transactions (merchant_id, checkout_id);

-- The fees account: ledger account names are 'psp_fees:<psp>' (debited with
-- the PSP's fee, psp_clearing:<psp> credited).  This table names the
-- accounts the reconciliation may post to, for the reports' readers.
CREATE TABLE IF NOT EXISTS ledger_accounts (
    account      text        PRIMARY KEY CONSTRAINT ledger_accounts_name CHECK (length(account) BETWEEN 1 AND 200),
    description  text        NOT NULL
);
INSERT INTO ledger_accounts (account, description) VALUES
    ('psp_clearing:*', 'money the PSP holds for us (debit: captured, credit: fees, refunds, pay-outs)'),
    ('seller_payable:*', 'what we owe a seller; the wallets mirror it'),
    ('psp_fees:*', 'fees the PSP charged, booked by payments-reconcile from its settlement reports')
ON CONFLICT (account) DO NOTHING;

-- ---------------------------------------------------------------------------
-- A payment the reconciliation applies goes through pay_webhook_apply with
-- payments.event_source = 'reconciliation': webhook_events.source (008)
-- takes that word too.  The constraint is widened from its current
-- definition, so values another migration added are kept.
DO $$
DECLARE
    v_def  text;
BEGIN
    SELECT pg_get_constraintdef(k.oid) INTO v_def FROM pg_constraint k
     WHERE k.conrelid = 'public.webhook_events'::regclass
       AND k.conname = 'webhook_events_source';
    IF v_def IS NOT NULL AND position('''reconciliation''' IN v_def) = 0 THEN
        IF position('ARRAY[' IN v_def) = 0 THEN
            RAISE EXCEPTION 'webhook_events_source is not a list: %', v_def;
        END IF;
        ALTER TABLE webhook_events DROP CONSTRAINT webhook_events_source;
        EXECUTE 'ALTER TABLE webhook_events ADD CONSTRAINT webhook_events_source '
             || replace(v_def, 'ARRAY[', 'ARRAY[''reconciliation''::text, ');
    END IF;
END
$$;

-- ---------------------------------------------------------------------------
-- A report starts: refused for a PSP no checkout ever used; NULL when the
-- same bytes were reconciled before (nothing is written then).

CREATE OR REPLACE FUNCTION recon_begin(p_psp text, p_dialect text,
    p_sha256 text, p_file text, p_rows int)
RETURNS bigint
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    v_id  bigint;
BEGIN
    -- one reconciliation of a PSP at a time; a second run of the same file
    -- waits here for the first and then finds its row
    PERFORM pg_advisory_xact_lock(hashtext('payments-reconcile:' || p_psp));

    IF NOT EXISTS (SELECT 1 FROM checkouts c WHERE c.psp = p_psp) THEN
        RAISE EXCEPTION 'unknown PSP "%": no checkout was ever registered with it', p_psp
            USING ERRCODE = 'PY011';
    END IF;

    SELECT r.report_id INTO v_id FROM recon_reports r WHERE r.sha256 = p_sha256;
    IF FOUND THEN
        RETURN NULL;
    END IF;

    INSERT INTO recon_reports (psp, dialect, sha256, file_name, row_count)
    VALUES (p_psp, p_dialect, p_sha256, left(coalesce(p_file, ''), 1000), p_rows)
    RETURNING report_id INTO v_id;

    RETURN v_id;
END
$$;

-- The report an earlier run of these bytes wrote, for the tool's message.
CREATE OR REPLACE FUNCTION recon_report_of(p_sha256 text)
RETURNS bigint
LANGUAGE sql STABLE SET search_path = public, pg_temp AS $$
    SELECT r.report_id FROM recon_reports r WHERE r.sha256 = p_sha256;
$$;

-- ---------------------------------------------------------------------------
-- Evidence helpers

CREATE OR REPLACE FUNCTION recon_row_json(r recon_rows)
RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT to_jsonb(r) - 'report_id' - 'outcome';
$$;

-- Every ledger row of a checkout, for the evidence.
CREATE OR REPLACE FUNCTION recon_ledger_json(p_merchant text, p_checkout text)
RETURNS jsonb
LANGUAGE sql STABLE SET search_path = public, pg_temp AS $$
    SELECT coalesce(jsonb_agg(jsonb_build_object(
               'txn_id', t.txn_id, 'payment_order_id', t.payment_order_id,
               'source', t.source, 'entry_no', e.entry_no, 'account', e.account,
               'amount', e.amount, 'currency', e.currency)
             ORDER BY t.txn_id, e.entry_no), '[]'::jsonb)
      FROM ledger_transactions t
      JOIN ledger_entries e ON e.merchant_id = t.merchant_id AND e.txn_id = t.txn_id
     WHERE t.merchant_id = p_merchant AND t.checkout_id = p_checkout;
$$;

CREATE OR REPLACE FUNCTION recon_checkout_json(p_merchant text, p_checkout text)
RETURNS jsonb
LANGUAGE sql STABLE SET search_path = public, pg_temp AS $$
    SELECT jsonb_build_object('merchant_id', c.merchant_id, 'checkout_id', c.checkout_id,
               'psp', c.psp, 'status', c.status, 'amount_total', c.amount_total,
               'currency', c.currency, 'created_at', c.created_at,
               'orders', (SELECT coalesce(jsonb_agg(jsonb_build_object(
                              'payment_order_id', o.payment_order_id,
                              'seller_account', o.seller_account, 'amount', o.amount,
                              'currency', o.currency, 'status', o.status)
                            ORDER BY o.line_no), '[]'::jsonb)
                            FROM payment_orders o
                           WHERE o.merchant_id = c.merchant_id AND o.checkout_id = c.checkout_id))
      FROM checkouts c
     WHERE c.merchant_id = p_merchant AND c.checkout_id = p_checkout;
$$;

CREATE OR REPLACE FUNCTION recon_flag(p_report bigint, r recon_rows, p_class text,
    p_kind text, p_merchant text, p_checkout text, p_currency text, p_amount bigint,
    p_ours jsonb)
RETURNS void
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
    INSERT INTO recon_mismatches (report_id, record, psp, class, kind, merchant_id,
                                  checkout_id, currency, amount, evidence)
    SELECT p_report, r.record, rp.psp, p_class, p_kind, p_merchant, p_checkout,
           p_currency, p_amount,
           jsonb_build_object(
               'report_row', CASE WHEN r.record IS NULL THEN NULL ELSE recon_row_json(r) END,
               'ours', p_ours,
               'ledger', CASE WHEN p_checkout IS NULL THEN '[]'::jsonb
                              ELSE recon_ledger_json(p_merchant, p_checkout) END)
      FROM recon_reports rp WHERE rp.report_id = p_report;
END
$$;

-- ---------------------------------------------------------------------------
-- The PSP's fee of a paid checkout: booked on its first order, psp_fees
-- debited, psp_clearing credited (a negative fee, a rebate, the other way).

CREATE OR REPLACE FUNCTION recon_book_fee(p_report bigint, r recon_rows,
    p_merchant text, p_checkout text)
RETURNS void
LANGUAGE plpgsql SET search_path = public, pg_temp SET enable_seqscan = off AS $$
DECLARE
    v_order  text;
    v_txn    bigint;
    v_psp    text;
BEGIN
    IF r.fee = 0 THEN
        RETURN;
    END IF;

    SELECT rp.psp INTO v_psp FROM recon_reports rp WHERE rp.report_id = p_report;

    SELECT o.payment_order_id INTO v_order FROM payment_orders o
     WHERE o.merchant_id = p_merchant AND o.checkout_id = p_checkout
     ORDER BY o.line_no LIMIT 1;

    INSERT INTO ledger_transactions (merchant_id, checkout_id, payment_order_id, source)
    VALUES (p_merchant, p_checkout, v_order,
            'reconciliation:' || v_psp || ':' || r.row_id || ':fee')
    RETURNING txn_id INTO v_txn;

    INSERT INTO ledger_entries (merchant_id, txn_id, entry_no, account, amount, currency)
    VALUES (p_merchant, v_txn, 1, 'psp_fees:' || v_psp, r.fee, r.net_currency),
           (p_merchant, v_txn, 2, 'psp_clearing:' || v_psp, -r.fee, r.net_currency);

    -- audited once per merchant and report at the end of recon_run (an
    -- audit row per fee would update the merchant's audit head thousands of
    -- times in one transaction)

    -- the evidence names the transaction booked; the checkout's other
    -- ledger rows are not copied for every paid payment of the report
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
-- A payment row.
--
-- The per-row functions and the run carry SET enable_seqscan = off: their
-- statements are planned once (PL/pgSQL caches the plans) while recon_rows
-- and recon_mismatches still have the statistics of empty tables, so a
-- plan would scan tables that grow by a row per report row: quadratic on a
-- report of 100,000 rows.  Every statement in them has an index to use.

CREATE OR REPLACE FUNCTION recon_payment(p_report bigint, r recon_rows)
RETURNS TABLE(outcome text, merchant_id text, checkout_id text)
LANGUAGE plpgsql SET search_path = public, pg_temp SET enable_seqscan = off AS $$
#variable_conflict use_column
DECLARE
    v_psp      text;
    c          checkouts%ROWTYPE;
    v_found    boolean := false;
    v_applied  record;
BEGIN
    SELECT rp.psp INTO v_psp FROM recon_reports rp WHERE rp.report_id = p_report;

    -- by our nonce first, then by the PSP's payment id (009 stores it)
    -- (the nonce is merchant_id ':' checkout_id: looked up by the key)
    IF r.reference <> '' AND position(':' IN r.reference) > 0 THEN
        SELECT * INTO c FROM checkouts ck
         WHERE ck.merchant_id = split_part(r.reference, ':', 1)
           AND ck.checkout_id = substr(r.reference,
                                       length(split_part(r.reference, ':', 1)) + 2)
           AND ck.nonce = r.reference AND ck.psp = v_psp;
        v_found := FOUND;
    END IF;

    IF NOT v_found AND r.payment_ref <> ''
       AND EXISTS (SELECT 1 FROM pg_attribute a
                    WHERE a.attrelid = 'public.checkouts'::regclass
                      AND a.attname = 'psp_payment_ref' AND NOT a.attisdropped) THEN
        EXECUTE 'SELECT * FROM checkouts WHERE psp = $1 AND psp_payment_ref = $2 LIMIT 1'
           INTO c USING v_psp, r.payment_ref;
        v_found := c.checkout_id IS NOT NULL;
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

    IF r.gross <> c.amount_total THEN
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
        -- webhook would be, the moves' source saying reconciliation
        PERFORM set_config('payments.event_source', 'reconciliation', true);
        SELECT * INTO v_applied FROM pay_webhook_apply(v_psp, 'reconcile:' || r.row_id,
            'SUCCEEDED', 'reconciliation', NULL, c.nonce, r.gross, r.currency) x;
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

    PERFORM recon_book_fee(p_report, r, c.merchant_id, c.checkout_id);

    RETURN QUERY SELECT CASE WHEN c.status <> 'SUCCESS' OR r.fee <> 0
                             THEN 'auto_fixed' ELSE 'matched' END,
                        c.merchant_id, c.checkout_id;
END
$$;

-- ---------------------------------------------------------------------------
-- Refunds, disputes, pay-outs: matched against 009's tables when they exist.
-- Without them, every such row is something we do not know.

CREATE OR REPLACE FUNCTION recon_money(p_report bigint, r recon_rows)
RETURNS TABLE(outcome text, merchant_id text, checkout_id text)
LANGUAGE plpgsql SET search_path = public, pg_temp SET enable_seqscan = off AS $$
#variable_conflict use_column
DECLARE
    v_psp     text;
    v_m       text;
    v_id      text;
    v_amount  bigint;
    v_cur     text;
    v_status  text;
    v_co      text;
    v_j       jsonb;
    v_kind    text;
BEGIN
    SELECT rp.psp INTO v_psp FROM recon_reports rp WHERE rp.report_id = p_report;

    IF r.type = 'refund' THEN
        IF to_regclass('public.refunds') IS NOT NULL THEN
            EXECUTE 'SELECT f.merchant_id, f.refund_id::text, f.amount, f.currency,
                            f.status::text, o.checkout_id, to_jsonb(f)
                       FROM refunds f
                       LEFT JOIN payment_orders o ON o.merchant_id = f.merchant_id
                                                 AND o.payment_order_id = f.payment_order_id
                      WHERE f.psp = $1 AND ((f.nonce = $2 AND $2 <> '''')
                                            OR (f.psp_refund_id = $3 AND $3 <> ''''))
                      LIMIT 1'
               INTO v_m, v_id, v_amount, v_cur, v_status, v_co, v_j
               USING v_psp, r.reference, r.object_ref;
        END IF;
        IF v_id IS NULL THEN
            v_kind := 'refund_unknown_here';
        ELSIF v_cur <> r.currency OR v_amount <> -r.gross THEN
            v_kind := 'refund_amount_differs';
        ELSIF v_status <> 'SUCCEEDED' THEN
            v_kind := 'refund_not_succeeded_here';
        END IF;
    ELSIF r.type IN ('dispute', 'dispute_won') THEN
        IF to_regclass('public.disputes') IS NOT NULL THEN
            EXECUTE 'SELECT d.merchant_id, d.dispute_id::text, d.amount, d.currency,
                            d.status::text, d.checkout_id, to_jsonb(d)
                       FROM disputes d
                      WHERE d.psp = $1 AND d.psp_dispute_ref = $2 LIMIT 1'
               INTO v_m, v_id, v_amount, v_cur, v_status, v_co, v_j
               USING v_psp, r.object_ref;
        END IF;
        IF v_id IS NULL THEN
            v_kind := 'dispute_unknown_here';
        ELSIF v_cur <> r.currency OR v_amount <> abs(r.gross) THEN
            v_kind := 'dispute_amount_differs';
        ELSIF r.type = 'dispute_won' AND v_status <> 'WON' THEN
            v_kind := 'dispute_status_differs';
        END IF;
    ELSIF r.type = 'payout' THEN
        IF to_regclass('public.payouts') IS NOT NULL THEN
            EXECUTE 'SELECT p.merchant_id, p.payout_id::text, p.amount, p.currency,
                            p.status::text, NULL::text, to_jsonb(p)
                       FROM payouts p
                      WHERE p.psp = $1 AND ((p.nonce = $2 AND $2 <> '''')
                                            OR (p.psp_payout_id = $3 AND $3 <> ''''))
                      LIMIT 1'
               INTO v_m, v_id, v_amount, v_cur, v_status, v_co, v_j
               USING v_psp, r.reference, r.object_ref;
        END IF;
        IF v_id IS NULL THEN
            v_kind := 'payout_unknown_here';
        ELSIF v_cur <> r.currency OR v_amount <> -r.gross THEN
            v_kind := 'payout_amount_differs';
        ELSIF v_status <> 'PAID' THEN
            v_kind := 'payout_not_paid_here';
        END IF;
    ELSE
        v_kind := r.type || '_reported';   -- refund_failure, payout_failure
    END IF;

    IF v_kind IS NULL THEN
        RETURN QUERY SELECT 'matched'::text, v_m, v_co;
        RETURN;
    END IF;

    PERFORM recon_flag(p_report, r, 'needs_person', v_kind, v_m, v_co,
        r.currency, r.gross, v_j);
    RETURN QUERY SELECT 'needs_person'::text, v_m, v_co;
END
$$;

-- ---------------------------------------------------------------------------
-- The run: every row of the report, then what the PSP should have had.

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
        UPDATE recon_seen s SET merchant_id = v.merchant_id, checkout_id = v.checkout_id
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
-- Internal checks, with every reconciliation; each failure is a needs_person
-- mismatch of the report.  Returns the number found.

CREATE OR REPLACE FUNCTION recon_check_flag(p_report bigint, p_kind text,
    p_merchant text, p_checkout text, p_currency text, p_amount bigint, p_ours jsonb)
RETURNS void
LANGUAGE sql SET search_path = public, pg_temp AS $$
    INSERT INTO recon_mismatches (report_id, record, psp, class, kind, merchant_id,
                                  checkout_id, currency, amount, evidence)
    SELECT p_report, NULL, rp.psp, 'needs_person', p_kind, p_merchant, p_checkout,
           p_currency, p_amount,
           jsonb_build_object('report_row', NULL, 'ours', p_ours,
               'ledger', CASE WHEN p_checkout IS NULL THEN '[]'::jsonb
                              ELSE recon_ledger_json(p_merchant, p_checkout) END)
      FROM recon_reports rp WHERE rp.report_id = p_report;
$$;

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

    -- every SUCCESS order has its ledger rows, and no other order has any
    FOR x IN
        SELECT o.merchant_id, o.checkout_id, o.payment_order_id, o.status, o.amount,
               o.currency, (t.txn_id IS NOT NULL) AS booked
          FROM payment_orders o
          LEFT JOIN (SELECT lt.merchant_id, lt.payment_order_id, min(lt.txn_id) AS txn_id
                       FROM ledger_transactions lt GROUP BY 1, 2) t
            ON t.merchant_id = o.merchant_id AND t.payment_order_id = o.payment_order_id
         WHERE (o.status = 'SUCCESS') <> (t.txn_id IS NOT NULL)
    LOOP
        PERFORM recon_check_flag(p_report,
            CASE WHEN x.booked THEN 'ledger_on_unpaid_order' ELSE 'success_order_without_ledger' END,
            x.merchant_id, x.checkout_id, x.currency, x.amount,
            jsonb_build_object('payment_order_id', x.payment_order_id, 'status', x.status));
        n := n + 1;
    END LOOP;

    -- refunds never exceed captures
    IF to_regclass('public.refunds') IS NOT NULL THEN
        FOR x IN EXECUTE
            'SELECT o.merchant_id, o.checkout_id, o.payment_order_id, o.amount, o.currency,
                    sum(f.amount) AS refunded
               FROM refunds f
               JOIN payment_orders o ON o.merchant_id = f.merchant_id
                                    AND o.payment_order_id = f.payment_order_id
              WHERE f.status IN (''SUCCEEDED'', ''PENDING'')
              GROUP BY 1, 2, 3, 4, 5
             HAVING sum(f.amount) > o.amount'
        LOOP
            PERFORM recon_check_flag(p_report, 'refunds_exceed_capture', x.merchant_id,
                x.checkout_id, x.currency, x.refunded - x.amount,
                jsonb_build_object('payment_order_id', x.payment_order_id,
                                   'captured', x.amount, 'refunded', x.refunded));
            n := n + 1;
        END LOOP;
    END IF;

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

-- Counts and amounts per class, kind and currency, for the terminal.
CREATE OR REPLACE FUNCTION recon_summary(p_report bigint)
RETURNS TABLE(class text, kind text, currency text, n bigint, amount numeric)
LANGUAGE sql STABLE SET search_path = public, pg_temp AS $$
    SELECT m.class, m.kind, coalesce(m.currency, '-'), count(*), coalesce(sum(m.amount), 0)
      FROM recon_mismatches m
     WHERE m.report_id = p_report
     GROUP BY 1, 2, 3
     ORDER BY CASE m.class WHEN 'needs_person' THEN 1 WHEN 'unclassified' THEN 2 ELSE 3 END,
              2, 3;
$$;

-- What of a report is still open for a person (the tool's exit status).
CREATE OR REPLACE FUNCTION recon_open(p_report bigint)
RETURNS bigint
LANGUAGE sql STABLE SET search_path = public, pg_temp AS $$
    SELECT count(*) FROM recon_mismatches m
     WHERE m.report_id = p_report AND m.class <> 'auto_fixed' AND m.resolved_at IS NULL;
$$;

REVOKE ALL ON recon_reports, recon_rows, recon_seen, recon_mismatches, ledger_accounts FROM PUBLIC;
REVOKE ALL ON FUNCTION
    recon_begin(text, text, text, text, int),
    recon_report_of(text),
    recon_row_json(recon_rows),
    recon_ledger_json(text, text),
    recon_checkout_json(text, text),
    recon_flag(bigint, recon_rows, text, text, text, text, text, bigint, jsonb),
    recon_book_fee(bigint, recon_rows, text, text),
    recon_payment(bigint, recon_rows),
    recon_money(bigint, recon_rows),
    recon_run(bigint),
    recon_check_flag(bigint, text, text, text, text, bigint, jsonb),
    recon_checks(bigint),
    recon_summary(bigint),
    recon_open(bigint)
    FROM PUBLIC;
