-- A paid webhook's checkout row written once, and two wrappers fewer
-- (issue 14).
--
-- Until now a checkout paid by a webhook was updated twice in one
-- transaction: pay_webhook_apply_core set its status, then payment_ref_note
-- (009) set psp_payment_ref on the same row.  Each UPDATE writes a new row
-- version and checks every constraint of checkouts again.  And the event
-- went through four PL/pgSQL layers, each a query of its own: pay_event_apply
-- (014: the token's key), pay_event_apply (009: the payment reference),
-- pay_webhook_apply (004: the audit row), pay_webhook_apply_core.
--
-- Now:
--   pay_webhook_apply_core(..., p_payment_ref)  015's body; the status
--       UPDATE notes the payment reference in the same statement (under
--       payment_ref_note's rules: a SUCCESS, a reference of 1..128
--       characters, none noted before) and adds its psp_payments row
--   pay_webhook_apply_core(8 arguments)  that one with no reference, for
--       its callers (pay_webhook_apply, the sweeper's 008 function)
--   pay_event_apply (10 arguments)  009's body; a payment's event calls
--       the core itself and writes 004's audit row itself.  payment_ref_note
--       is left for an event that finds the checkout already paid ('already':
--       a reference that came later)
--
-- Outcomes, rows and audit rows are the same as before.

CREATE OR REPLACE FUNCTION pay_webhook_apply_core(
    p_psp text, p_event_id text, p_kind text, p_type text, p_token text,
    p_reference text, p_amount bigint, p_currency text, p_payment_ref text)
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
    v_comm     bigint;
    v_sellers  text[] := '{}';
    v_wcur     text[] := '{}';
    v_wamount  bigint[] := '{}';
    v_ref      text;
BEGIN
    IF p_kind NOT IN ('SUCCEEDED', 'FAILED', 'PENDING', 'IGNORED') THEN
        RAISE EXCEPTION 'pay_webhook_apply: unknown kind %', p_kind
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

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
                v_outcome := 'late_contrary';
            ELSE
                v_source := coalesce(nullif(current_setting('payments.event_source', true), ''),
                                     'webhook') || ':' || p_psp || ':' || p_event_id;

                -- the PSP's id of the payment, noted with the status (as
                -- payment_ref_note does for a checkout paid before)
                IF v_target = 'SUCCESS' AND c.psp_payment_ref IS NULL
                   AND length(p_payment_ref) BETWEEN 1 AND 128 THEN
                    v_ref := p_payment_ref;
                END IF;

                UPDATE checkouts ck
                   SET status = v_target, updated_at = now(),
                       psp_payment_ref = coalesce(v_ref, ck.psp_payment_ref)
                 WHERE ck.merchant_id = v_m AND ck.checkout_id = v_co;

                IF v_ref IS NOT NULL THEN
                    INSERT INTO psp_payments (psp, payment_ref, merchant_id, checkout_id)
                    VALUES (p_psp, v_ref, v_m, v_co)
                    ON CONFLICT DO NOTHING;
                END IF;

                FOR o IN
                    SELECT po.payment_order_id, po.seller_account, po.amount,
                           po.currency, po.status
                      FROM payment_orders po
                     WHERE po.merchant_id = v_m AND po.checkout_id = v_co
                     ORDER BY po.seller_account, po.line_no
                       FOR UPDATE
                LOOP
                    v_comm := CASE WHEN v_target = 'SUCCESS'
                                   THEN commission_of(o.amount, coalesce(c.commission_bps, 0),
                                                       coalesce(c.commission_fixed, 0))
                              END;

                    UPDATE payment_orders po
                       SET status = v_target,
                           ledger_updated = (v_target = 'SUCCESS'),
                           wallet_updated = (v_target = 'SUCCESS'),
                           commission = v_comm,
                           updated_at = now()
                     WHERE po.merchant_id = v_m AND po.payment_order_id = o.payment_order_id;

                    INSERT INTO order_events (merchant_id, checkout_id, payment_order_id,
                                              from_status, to_status, source)
                    VALUES (v_m, v_co, o.payment_order_id, o.status, v_target, v_source);

                    IF v_target = 'SUCCESS' THEN
                        -- the PSP holds the money: clearing debited, the
                        -- seller's net share and the commission credited
                        PERFORM ledger_book(v_m, v_co, o.payment_order_id, 'payment', NULL,
                            v_source, o.currency,
                            ARRAY['psp_clearing:' || p_psp,
                                  'seller_payable:' || o.seller_account,
                                  'platform_commission'],
                            ARRAY[o.amount, -(o.amount - v_comm), -v_comm]);
                        v_sellers := v_sellers || o.seller_account;
                        v_wcur := v_wcur || o.currency::text;
                        v_wamount := v_wamount || (o.amount - v_comm);
                    END IF;
                END LOOP;

                -- the wallets last, in the loop's (seller) order: a seller's
                -- wallet row is the one row every payment of that seller
                -- locks, so it is held for the least time
                FOR i IN 1 .. coalesce(array_length(v_sellers, 1), 0) LOOP
                    PERFORM wallet_add(v_m, v_sellers[i], v_wcur[i], v_wamount[i]);
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

-- 015's signature, for pay_webhook_apply (004) and pay_sweeper_apply (008)
CREATE OR REPLACE FUNCTION pay_webhook_apply_core(
    p_psp text, p_event_id text, p_kind text, p_type text, p_token text,
    p_reference text, p_amount bigint, p_currency text)
RETURNS TABLE(outcome text, merchant_id text, checkout_id text)
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT * FROM pay_webhook_apply_core(p_psp, p_event_id, p_kind, p_type, p_token,
                                         p_reference, p_amount, p_currency, NULL::text);
$$;

-- 009's, the payment's event straight to the core
CREATE OR REPLACE FUNCTION pay_event_apply(
    p_psp text, p_event_id text, p_kind text, p_type text, p_token text,
    p_reference text, p_amount bigint, p_currency text, p_payment_ref text,
    p_object_ref text)
RETURNS TABLE(outcome text, merchant_id text, checkout_id text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
#variable_conflict use_column
DECLARE
    v  record;
BEGIN
    IF p_kind IN ('SUCCEEDED', 'FAILED', 'PENDING', 'IGNORED') THEN
        IF p_kind IN ('PENDING', 'IGNORED') AND coalesce(p_object_ref, '') <> '' THEN
            -- authentic news of a refund, dispute or pay-out that moves nothing
            INSERT INTO webhook_events AS we (psp, event_id, kind, type, outcome)
            VALUES (p_psp, p_event_id, p_kind, left(coalesce(p_type, ''), 100),
                    lower(p_kind))
            ON CONFLICT (psp, event_id) DO NOTHING;
            RETURN QUERY SELECT CASE WHEN FOUND THEN lower(p_kind) ELSE 'duplicate' END,
                                NULL::text, NULL::text;
            RETURN;
        END IF;

        SELECT * INTO v FROM pay_webhook_apply_core(p_psp, p_event_id, p_kind, p_type,
            p_token, p_reference, p_amount, p_currency,
            CASE WHEN p_kind = 'SUCCEEDED' THEN p_payment_ref END) x;

        -- 004's audit row (a duplicate delivery changed nothing)
        IF v.merchant_id IS NOT NULL AND v.outcome <> 'duplicate' THEN
            PERFORM audit_append(v.merchant_id, v.checkout_id, 'webhook:' || v.outcome,
                jsonb_build_object('psp', p_psp, 'event_id', p_event_id,
                                   'kind', p_kind, 'type', p_type));
        END IF;

        IF p_kind = 'SUCCEEDED' AND v.outcome = 'already' THEN
            PERFORM payment_ref_note(p_psp, v.merchant_id, v.checkout_id, p_payment_ref);
        END IF;
        RETURN QUERY SELECT v.outcome, v.merchant_id, v.checkout_id;
        RETURN;
    END IF;

    IF p_kind NOT IN ('REFUND_SUCCEEDED', 'REFUND_FAILED', 'DISPUTE_OPENED', 'DISPUTE_WON',
                      'DISPUTE_LOST', 'PAYOUT_PAID', 'PAYOUT_FAILED') THEN
        RAISE EXCEPTION 'pay_event_apply: unknown kind %', p_kind
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    INSERT INTO webhook_events AS we (psp, event_id, kind, type, outcome)
    VALUES (p_psp, p_event_id, p_kind, left(coalesce(p_type, ''), 100), 'received')
    ON CONFLICT (psp, event_id) DO NOTHING;
    IF NOT FOUND THEN
        SELECT we.merchant_id, we.checkout_id INTO v
          FROM webhook_events we WHERE we.psp = p_psp AND we.event_id = p_event_id;
        RETURN QUERY SELECT 'duplicate'::text, v.merchant_id, v.checkout_id;
        RETURN;
    END IF;

    IF p_kind LIKE 'REFUND_%' THEN
        SELECT * INTO v FROM refund_event_apply(p_psp, p_event_id, p_kind, p_reference,
                                                p_amount, p_currency, p_object_ref);
    ELSIF p_kind LIKE 'DISPUTE_%' THEN
        SELECT * INTO v FROM dispute_event_apply(p_psp, p_event_id, p_kind, p_reference,
                                                 p_amount, p_currency, p_payment_ref,
                                                 p_object_ref);
    ELSE
        SELECT * INTO v FROM payout_event_apply(p_psp, p_event_id, p_kind, p_reference,
                                                p_amount, p_currency, p_object_ref);
    END IF;

    UPDATE webhook_events we
       SET outcome = v.outcome, merchant_id = v.merchant_id, checkout_id = v.checkout_id
     WHERE we.psp = p_psp AND we.event_id = p_event_id;

    IF v.merchant_id IS NOT NULL THEN
        PERFORM audit_append(v.merchant_id, v.checkout_id, 'webhook:' || v.outcome,
            jsonb_build_object('psp', p_psp, 'event_id', p_event_id, 'kind', p_kind,
                               'type', p_type, 'object', p_object_ref));
    END IF;

    RETURN QUERY SELECT v.outcome, v.merchant_id, v.checkout_id;
END
$$;

REVOKE ALL ON FUNCTION
    pay_webhook_apply_core(text, text, text, text, text, text, bigint, text, text),
    pay_webhook_apply_core(text, text, text, text, text, text, bigint, text),
    pay_event_apply(text, text, text, text, text, text, bigint, text, text, text)
    FROM PUBLIC;
