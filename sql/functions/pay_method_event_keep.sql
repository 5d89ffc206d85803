-- A verified PSP event saying that the shopper's payment method was
-- stored (Stripe's payment intent with setup_future_usage, Adyen's
-- RECURRING_CONTRACT, the generic payment_method.saved), kept and applied
-- in one transaction as pay_event_keep does for the others: the inbox row
-- (kind METHOD_SAVED, its token column empty: the reusable token is only
-- ever stored sealed; its body sealed by the gateway, for it carries the
-- token; its method column what a replay needs, the token sealed) and the
-- saved method (pay_method_saved_apply), for the checkout whose nonce the
-- event names and that asked for it.  The caller sealed the token
-- with "payment_method:<reference>" as associated data and made its blind
-- index (domain "payment_method:<psp>").  Outcomes:
--   saved      a new saved method (audited on the checkout's chain);
--   already    this token (or a method of this checkout) is saved;
--   not_asked  the checkout did not ask to save its method: nothing kept
--              but the event;
--   unknown_checkout  no checkout of that nonce at this PSP: kept
--              unmatched (foreign when the reference is not a nonce).
-- A second delivery changes nothing: 'duplicate'.
CREATE OR REPLACE FUNCTION pay_method_event_keep(p_psp text, p_event_id text, p_type text, p_reference text, p_token_sealed text, p_token_index text, p_psp_customer text, p_display jsonb, p_body bytea, p_headers jsonb, p_key_id text)
 RETURNS TABLE(outcome text, merchant_id text, checkout_id text, state text, method_id text)
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
#variable_conflict use_column
DECLARE
    v         record;
    a         record;
    v_method  jsonb;
BEGIN
    IF to_regclass('psp_events_' || to_char(now() AT TIME ZONE 'UTC', '"y"YYYY"m"MM')) IS NULL THEN
        PERFORM pay_inbox_partitions(1);
    END IF;

    PERFORM pg_advisory_xact_lock(1436, hashtext(p_psp || ' ' || p_event_id));
    -- one index, then the kept row's month alone (psp_event_kept)
    SELECT k.* INTO v FROM psp_event_kept(p_psp, p_event_id) k;
    IF FOUND THEN
        RETURN QUERY SELECT 'duplicate'::text, v.merchant_id, v.checkout_id, v.state,
                            NULL::text;
        RETURN;
    END IF;

    v_method := jsonb_build_object('token_sealed', p_token_sealed,
                                   'token_index', p_token_index,
                                   'psp_customer', nullif(p_psp_customer, ''),
                                   'display', coalesce(p_display, '{}'));

    SELECT * INTO a FROM pay_method_saved_apply(p_psp, p_event_id, p_reference, v_method) x;

    INSERT INTO psp_events (psp, event_id, state, body, headers, key_id, kind, type,
                            reference, outcome, merchant_id, checkout_id, applied_at,
                            unmatched_at, method)
    VALUES (p_psp, p_event_id, a.state, p_body, coalesce(p_headers, '{}'), p_key_id,
            'METHOD_SAVED', left(coalesce(p_type, ''), 100), nullif(p_reference, ''),
            a.outcome, a.merchant_id, a.checkout_id,
            CASE WHEN a.state = 'applied' THEN now() END,
            CASE WHEN a.state = 'unmatched' THEN now() END, v_method);

    RETURN QUERY SELECT a.outcome, a.merchant_id, a.checkout_id, a.state, a.method_id;
END
$function$;
REVOKE ALL ON FUNCTION pay_method_event_keep(p_psp text, p_event_id text, p_type text, p_reference text, p_token_sealed text, p_token_index text, p_psp_customer text, p_display jsonb, p_body bytea, p_headers jsonb, p_key_id text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_method_event_keep(p_psp text, p_event_id text, p_type text, p_reference text, p_token_sealed text, p_token_index text, p_psp_customer text, p_display jsonb, p_body bytea, p_headers jsonb, p_key_id text) TO payments_gateway;
