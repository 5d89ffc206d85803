-- A checkout paid by the sweeper's answer written once, as a webhook's is
-- since 021 (issue 14).
--
-- pay_sweeper_apply with the PSP's payment id (009) called 008's function,
-- which applied the answer through the core, then noted the payment id with
-- payment_ref_note: a second UPDATE of the same checkout row in the same
-- transaction, with every CHECK of checkouts evaluated again.
--
-- Now:
--   pay_sweeper_apply(9 arguments)  008's body; the core (021) notes the
--       payment id with the status, under the same rules; payment_ref_note
--       is left for an answer that finds the checkout paid already
--       ('already': a payment id that came later)
--   pay_sweeper_apply(8 arguments)  that one with no payment id
--
-- Outcomes, rows and audit rows are the same as before.

CREATE OR REPLACE FUNCTION pay_sweeper_apply(
    p_psp text, p_event_id text, p_kind text, p_type text, p_token text,
    p_reference text, p_amount bigint, p_currency text, p_payment_ref text)
RETURNS TABLE(outcome text, merchant_id text, checkout_id text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
#variable_conflict use_column
DECLARE
    v         record;
    v_amount  bigint := p_amount;
    v_cur     text := p_currency;
BEGIN
    -- Adyen's session result carries no amount: a success without one is
    -- checked against the checkout's own (008 says why)
    IF p_kind = 'SUCCEEDED' AND p_amount = -1 AND coalesce(p_currency, '') = ''
       AND coalesce(p_token, '') <> '' THEN
        SELECT c.amount_total, c.currency INTO v_amount, v_cur
          FROM psp_tokens t
          JOIN checkouts c
            ON c.merchant_id = t.merchant_id AND c.checkout_id = t.checkout_id
         WHERE t.psp = p_psp AND t.psp_token = p_token;
        v_amount := coalesce(v_amount, -1);
        v_cur := coalesce(v_cur, '');
    END IF;

    PERFORM set_config('payments.event_source', 'sweeper', true);

    SELECT * INTO v FROM pay_webhook_apply_core(p_psp, p_event_id, p_kind,
        p_type, p_token, p_reference, v_amount, v_cur,
        CASE WHEN p_kind = 'SUCCEEDED' THEN p_payment_ref END) x;

    PERFORM set_config('payments.event_source', '', true);

    IF v.merchant_id IS NOT NULL AND v.outcome <> 'duplicate' THEN
        PERFORM audit_append(v.merchant_id, v.checkout_id, 'sweeper:' || v.outcome,
            jsonb_build_object('psp', p_psp, 'event_id', p_event_id,
                               'kind', p_kind, 'type', p_type));

        UPDATE checkout_sweeps s SET last_answer = left(p_type || ': ' || v.outcome, 100)
         WHERE s.merchant_id = v.merchant_id AND s.checkout_id = v.checkout_id;
    END IF;

    IF p_kind = 'SUCCEEDED' AND v.outcome = 'already' THEN
        PERFORM payment_ref_note(p_psp, v.merchant_id, v.checkout_id, p_payment_ref);
    END IF;

    RETURN QUERY SELECT v.outcome, v.merchant_id, v.checkout_id;
END
$$;

-- 008's signature
CREATE OR REPLACE FUNCTION pay_sweeper_apply(
    p_psp text, p_event_id text, p_kind text, p_type text, p_token text,
    p_reference text, p_amount bigint, p_currency text)
RETURNS TABLE(outcome text, merchant_id text, checkout_id text)
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT * FROM pay_sweeper_apply(p_psp, p_event_id, p_kind, p_type, p_token,
                                    p_reference, p_amount, p_currency, NULL::text);
$$;
