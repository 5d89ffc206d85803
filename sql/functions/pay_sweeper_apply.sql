-- What the sweeper learnt from the PSP's session look-up, applied as a
-- webhook would be (pay_webhook_apply_core), with the sweeper named in the
-- audit row.  p_tokens: the token's blind indexes, as for pay_event_apply.
-- p_kind CAPTURED: a success the PSP says was captured (Stripe's session
-- paid), booked SUCCESS whatever the stored capture mode.  p_payment_ref,
-- the PSP's id of the payment, is noted with a success or a hold
-- (AUTHORIZED: the generic look-up's "authorized"), as the webhook's.
CREATE OR REPLACE FUNCTION pay_sweeper_apply(p_psp text, p_event_id text, p_kind text, p_type text, p_token text, p_reference text, p_amount bigint, p_currency text, p_payment_ref text, p_tokens text[])
 RETURNS TABLE(outcome text, merchant_id text, checkout_id text)
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
#variable_conflict use_column
DECLARE
    v         record;
    v_token   text := psp_token_key(p_psp, p_token, p_tokens);
    v_amount  bigint := p_amount;
    v_cur     text := p_currency;
BEGIN
    -- Adyen's session result carries no amount: a success without one is
    -- checked against the checkout's own (the PSP's look-up found it by
    -- our session, so its amount is the one we registered) -- unless the
    -- PSP's own success event named another amount or currency (recorded
    -- amount_mismatch, the checkout left for a person): the PSP may have
    -- moved that one, and nothing is booked that it did not move.  Without
    -- an amount put in, the success is amount_mismatch again: recorded,
    -- alerted, nothing booked.  A look-up that names its amount is
    -- checked as it is.
    IF p_kind = 'SUCCEEDED' AND p_amount = -1 AND coalesce(p_currency, '') = ''
       AND coalesce(v_token, '') <> '' THEN
        SELECT c.amount_total, c.currency INTO v_amount, v_cur
          FROM psp_tokens t
          JOIN checkouts c
            ON c.merchant_id = t.merchant_id AND c.checkout_id = t.checkout_id
         WHERE t.psp = p_psp AND t.psp_token = v_token
           AND NOT EXISTS (SELECT 1 FROM webhook_events we
                            WHERE we.merchant_id = c.merchant_id
                              AND we.checkout_id = c.checkout_id
                              AND we.outcome = 'amount_mismatch'
                              AND we.kind IN ('SUCCEEDED', 'CAPTURED', 'AUTHORIZED'));
        v_amount := coalesce(v_amount, -1);
        v_cur := coalesce(v_cur, '');
    END IF;

    PERFORM set_config('payments.event_source', 'sweeper', true);

    SELECT * INTO v FROM pay_webhook_apply_core(p_psp, p_event_id, p_kind,
        p_type, v_token, p_reference, v_amount, v_cur,
        CASE WHEN p_kind IN ('SUCCEEDED', 'CAPTURED', 'AUTHORIZED') THEN p_payment_ref END, NULL) x;

    PERFORM set_config('payments.event_source', '', true);

    IF v.merchant_id IS NOT NULL AND v.outcome <> 'duplicate' THEN
        IF NOT (p_kind = 'FAILED' AND v.outcome = 'pending') THEN
            PERFORM audit_append(v.merchant_id, v.checkout_id, 'sweeper:' || v.outcome,
                jsonb_build_object('psp', p_psp, 'event_id', p_event_id,
                                   'kind', p_kind, 'type', p_type));
        END IF;

        UPDATE checkout_sweeps s SET last_answer = left(p_type || ': ' || v.outcome, 100)
         WHERE s.merchant_id = v.merchant_id AND s.checkout_id = v.checkout_id;
    END IF;

    IF p_kind IN ('SUCCEEDED', 'CAPTURED', 'AUTHORIZED') AND v.outcome = 'already' THEN
        PERFORM payment_ref_note(p_psp, v.merchant_id, v.checkout_id, p_payment_ref);
    END IF;

    RETURN QUERY SELECT v.outcome, v.merchant_id, v.checkout_id;
END
$function$;
REVOKE ALL ON FUNCTION pay_sweeper_apply(p_psp text, p_event_id text, p_kind text, p_type text, p_token text, p_reference text, p_amount bigint, p_currency text, p_payment_ref text, p_tokens text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_sweeper_apply(p_psp text, p_event_id text, p_kind text, p_type text, p_token text, p_reference text, p_amount bigint, p_currency text, p_payment_ref text, p_tokens text[]) TO payments_gateway;

-- The signatures this one replaced, dropped in the transaction that
-- changes its body, so no caller ever finds neither (the previous release's
-- workers call this signature too).
DROP FUNCTION IF EXISTS pay_sweeper_apply(text, text, text, text, text, text, bigint, text);
DROP FUNCTION IF EXISTS pay_sweeper_apply(text, text, text, text, text, text, bigint, text, text);
