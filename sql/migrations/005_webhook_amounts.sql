-- 005: webhook amounts (review fixes).
--
-- pay_webhook_apply_core (003's decision, wrapped by 004's audit) again,
-- with two rules changed:
--   * a SUCCEEDED event must carry an amount and a currency, and both must
--     equal the checkout's: a signed Stripe event without amount_total or
--     currency was applied unchecked;
--   * any amount other than -1 ("absent") is compared, so the core's -2
--     ("the PSP's amount has no exact ISO value") is an amount_mismatch.
-- Amounts arrive in ISO minor units: the core converts from each PSP's own
-- units (Stripe ISK has two decimals, Adyen CLP two, CVE none...).

-- One webhook event, one transaction.
--   p_kind: SUCCEEDED | FAILED | PENDING | IGNORED (the core's reading)
--   p_token: the PSP session token ('' if the event carries none)
--   p_reference: our nonce merchant_id:checkout_id ('' if none)
--   p_amount: ISO 4217 minor units, -1 if absent (any other negative value:
--             the PSP's amount has no exact ISO value, it matches nothing);
--   p_currency: '' if absent.  A success must carry both: a paid event
--   whose amount cannot be checked is an amount_mismatch, never applied.
-- outcome: applied | duplicate | already | late_contrary | pending | ignored
--          | unknown_checkout | mismatch | amount_mismatch
CREATE OR REPLACE FUNCTION pay_webhook_apply_core(
    p_psp text, p_event_id text, p_kind text, p_type text, p_token text,
    p_reference text, p_amount bigint, p_currency text)
RETURNS TABLE(outcome text, merchant_id text, checkout_id text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
#variable_conflict use_column
DECLARE
    c          checkouts%ROWTYPE;
    o          record;
    v_m        text;
    v_co       text;
    v_ref_m    text;
    v_ref_co   text;
    v_outcome  text;
    v_target   pay_status;
    v_source   text;
    v_txn      bigint;
BEGIN
    IF p_kind NOT IN ('SUCCEEDED', 'FAILED', 'PENDING', 'IGNORED') THEN
        RAISE EXCEPTION 'pay_webhook_apply: unknown kind %', p_kind
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    -- The event row first: a second delivery of the same event waits here
    -- for the first transaction, then finds the row and changes nothing.
    INSERT INTO webhook_events AS we (psp, event_id, kind, type, outcome)
    VALUES (p_psp, p_event_id, p_kind, left(coalesce(p_type, ''), 100), 'received')
    ON CONFLICT (psp, event_id) DO NOTHING;

    IF NOT FOUND THEN
        SELECT we.merchant_id, we.checkout_id INTO v_m, v_co
          FROM webhook_events we
         WHERE we.psp = p_psp AND we.event_id = p_event_id;
        RETURN QUERY SELECT 'duplicate'::text, v_m, v_co;
        RETURN;
    END IF;

    -- The checkout: by the PSP's token when the event has one, else by our
    -- nonce; when both are there they must name the same checkout.
    IF coalesce(p_token, '') <> '' THEN
        SELECT t.merchant_id, t.checkout_id INTO v_m, v_co
          FROM psp_tokens t
         WHERE t.psp = p_psp AND t.psp_token = p_token;
    END IF;

    IF coalesce(p_reference, '') <> '' AND position(':' IN p_reference) > 0 THEN
        v_ref_m := split_part(p_reference, ':', 1);
        v_ref_co := substr(p_reference, length(v_ref_m) + 2);

        IF coalesce(p_token, '') = '' THEN
            v_m := v_ref_m;
            v_co := v_ref_co;
        ELSIF v_m IS NOT NULL AND (v_m <> v_ref_m OR v_co <> v_ref_co) THEN
            v_outcome := 'mismatch';
        END IF;
    END IF;

    IF v_outcome IS NULL THEN
        SELECT * INTO c FROM checkouts ck
         WHERE ck.merchant_id = v_m AND ck.checkout_id = v_co AND ck.psp = p_psp
           FOR UPDATE;

        IF NOT FOUND THEN
            v_outcome := 'unknown_checkout';
            v_m := NULL;
            v_co := NULL;
        ELSIF (p_amount <> -1 AND p_amount <> c.amount_total)
              OR (coalesce(p_currency, '') <> '' AND upper(p_currency) <> c.currency)
              OR (p_kind = 'SUCCEEDED'
                  AND (p_amount = -1 OR coalesce(p_currency, '') = '')) THEN
            v_outcome := 'amount_mismatch';
        ELSIF p_kind = 'PENDING' THEN
            v_outcome := 'pending';
        ELSIF p_kind = 'IGNORED' THEN
            v_outcome := 'ignored';
        ELSE
            v_target := CASE p_kind WHEN 'SUCCEEDED' THEN 'SUCCESS'::pay_status
                                    ELSE 'FAILED'::pay_status END;
            IF c.status = v_target THEN
                v_outcome := 'already';
            ELSIF c.status IN ('SUCCESS', 'FAILED') THEN
                -- terminal: a late contrary event is recorded, never applied
                v_outcome := 'late_contrary';
            ELSE
                v_source := 'webhook:' || p_psp || ':' || p_event_id;

                UPDATE checkouts ck SET status = v_target, updated_at = now()
                 WHERE ck.merchant_id = v_m AND ck.checkout_id = v_co;

                -- Wallet rows are locked in seller order, so two checkouts
                -- paying the same sellers never deadlock.
                FOR o IN
                    SELECT po.payment_order_id, po.seller_account, po.amount,
                           po.currency, po.status
                      FROM payment_orders po
                     WHERE po.merchant_id = v_m AND po.checkout_id = v_co
                     ORDER BY po.seller_account, po.line_no
                       FOR UPDATE
                LOOP
                    -- a SUCCESS is booked below, in this transaction
                    UPDATE payment_orders po
                       SET status = v_target,
                           ledger_updated = (v_target = 'SUCCESS'),
                           wallet_updated = (v_target = 'SUCCESS'),
                           updated_at = now()
                     WHERE po.merchant_id = v_m AND po.payment_order_id = o.payment_order_id;

                    INSERT INTO order_events (merchant_id, checkout_id, payment_order_id,
                                              from_status, to_status, source)
                    VALUES (v_m, v_co, o.payment_order_id, o.status, v_target, v_source);

                    IF v_target = 'SUCCESS' THEN
                        -- the PSP holds the money for the seller: clearing
                        -- debited, the seller's payable credited
                        INSERT INTO ledger_transactions (merchant_id, checkout_id,
                                                         payment_order_id, source)
                        VALUES (v_m, v_co, o.payment_order_id, v_source)
                        RETURNING txn_id INTO v_txn;

                        INSERT INTO ledger_entries (merchant_id, txn_id, entry_no,
                                                    account, amount, currency)
                        VALUES (v_m, v_txn, 1, 'psp_clearing:' || p_psp, o.amount, o.currency),
                               (v_m, v_txn, 2, 'seller_payable:' || o.seller_account,
                                -o.amount, o.currency);

                        INSERT INTO wallets AS w (merchant_id, seller_account, currency, balance)
                        VALUES (v_m, o.seller_account, o.currency, o.amount)
                        ON CONFLICT ON CONSTRAINT wallets_pkey
                        DO UPDATE SET balance = w.balance + EXCLUDED.balance,
                                      updated_at = now();
                    END IF;
                END LOOP;

                v_outcome := 'applied';
            END IF;
        END IF;
    END IF;

    UPDATE webhook_events we
       SET outcome = v_outcome, merchant_id = v_m, checkout_id = v_co
     WHERE we.psp = p_psp AND we.event_id = p_event_id;

    RETURN QUERY SELECT v_outcome, v_m, v_co;
END
$$;

