-- What the sweeper learnt from a setup's session look-up (a save without
-- a charge whose PSP events never came): the PSP's stored method, applied
-- as the PSP's event that it was stored would be (pay_method_saved_apply,
-- under the event's advisory lock), with the sweeper named in the audit
-- row.  p_event_id: "lookup:<session token or its blind index>:<status>".
-- The caller sealed the token with "payment_method:<reference>" as
-- associated data and made its blind index (domain "payment_method:<psp>"),
-- as the webhook's does.  Outcomes as pay_method_saved_apply's: saved (the
-- setup SUCCESS with it), already (the PSP's event came first, or comes
-- later and finds it), not_asked, unknown_checkout.
CREATE OR REPLACE FUNCTION pay_sweeper_method_saved(p_psp text, p_event_id text, p_reference text, p_token_sealed text, p_token_index text, p_psp_customer text, p_display jsonb)
 RETURNS TABLE(outcome text, merchant_id text, checkout_id text, method_id text)
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
#variable_conflict use_column
DECLARE
    a  record;
BEGIN
    IF coalesce(p_token_sealed, '') = '' OR coalesce(p_token_index, '') = '' THEN
        RAISE EXCEPTION 'pay_sweeper_method_saved: the sealed token and its index are required'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    PERFORM pg_advisory_xact_lock(1436, hashtext(p_psp || ' ' || p_event_id));

    SELECT * INTO a FROM pay_method_saved_apply(p_psp, p_event_id, p_reference,
        jsonb_build_object('token_sealed', p_token_sealed,
                           'token_index', p_token_index,
                           'psp_customer', nullif(p_psp_customer, ''),
                           'display', coalesce(p_display, '{}'))) x;

    IF a.merchant_id IS NOT NULL THEN
        IF a.outcome = 'saved' THEN
            PERFORM audit_append(a.merchant_id, a.checkout_id, 'sweeper:saved',
                jsonb_build_object('psp', p_psp, 'event_id', p_event_id,
                                   'payment_method', a.method_id));
        END IF;

        UPDATE checkout_sweeps s SET last_answer = left('method saved: ' || a.outcome, 100)
         WHERE s.merchant_id = a.merchant_id AND s.checkout_id = a.checkout_id;
    END IF;

    RETURN QUERY SELECT a.outcome, a.merchant_id, a.checkout_id, a.method_id;
END
$function$;
REVOKE ALL ON FUNCTION pay_sweeper_method_saved(p_psp text, p_event_id text, p_reference text, p_token_sealed text, p_token_index text, p_psp_customer text, p_display jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_sweeper_method_saved(p_psp text, p_event_id text, p_reference text, p_token_sealed text, p_token_index text, p_psp_customer text, p_display jsonb) TO payments_gateway;
