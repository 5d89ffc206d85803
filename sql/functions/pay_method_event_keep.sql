-- A verified PSP event saying that the shopper's payment method was
-- stored (Stripe's payment intent with setup_future_usage, Adyen's
-- RECURRING_CONTRACT, the generic payment_method.saved), kept and applied
-- in one transaction as pay_event_keep does for the others: the inbox row
-- (kind METHOD_SAVED, its token column empty: the reusable token is only
-- ever stored sealed) and the saved method, for the checkout whose nonce
-- the event names and that asked for it.  The caller sealed the token
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
    v        record;
    c        checkouts%ROWTYPE;
    v_out    text;
    v_state  text := 'applied';
    v_id     text;
BEGIN
    IF to_regclass('psp_events_' || to_char(now() AT TIME ZONE 'UTC', '"y"YYYY"m"MM')) IS NULL THEN
        PERFORM pay_inbox_partitions(1);
    END IF;

    PERFORM pg_advisory_xact_lock(1436, hashtext(p_psp || ' ' || p_event_id));
    SELECT e.state, e.merchant_id, e.checkout_id INTO v
      FROM psp_events e
     WHERE e.psp = p_psp AND e.event_id = p_event_id
     LIMIT 1;
    IF FOUND THEN
        RETURN QUERY SELECT 'duplicate'::text, v.merchant_id, v.checkout_id, v.state,
                            NULL::text;
        RETURN;
    END IF;

    SELECT * INTO c FROM checkouts ck
     WHERE ck.nonce = p_reference AND ck.psp = p_psp
       AND ck.merchant_id = split_part(p_reference, ':', 1)
       FOR UPDATE;

    IF NOT FOUND THEN
        v_out := 'unknown_checkout';
        v_state := CASE WHEN coalesce(p_reference, '')
                             ~ '^[A-Za-z0-9_-]{1,64}:[A-Za-z0-9_-]{1,64}$'
                        THEN 'unmatched' ELSE 'foreign' END;
    ELSIF c.save_method IS NULL THEN
        v_out := 'not_asked';
    ELSE
        -- 96 random bits as letters a-p: an id with no digits is never
        -- taken for a card number in the merchant's request
        v_id := 'pm_' || translate(encode(gen_random_bytes_compat(12), 'hex'),
                                   '0123456789abcdef', 'abcdefghijklmnop');

        INSERT INTO payment_methods (merchant_id, method_id, customer, customer_ref,
                                     psp, psp_customer, token_sealed, token_index,
                                     usage, recurring, brand, last4, exp_month,
                                     exp_year, checkout_id, event_id)
        VALUES (c.merchant_id, v_id, c.save_method ->> 'customer',
                c.save_method ->> 'customer_ref', p_psp, nullif(p_psp_customer, ''),
                p_token_sealed, p_token_index, c.save_method ->> 'usage',
                c.save_method ->> 'recurring',
                nullif(lower(p_display ->> 'brand'), ''),
                nullif(p_display ->> 'last4', ''),
                (p_display ->> 'exp_month')::int, (p_display ->> 'exp_year')::int,
                c.checkout_id, p_event_id)
        ON CONFLICT DO NOTHING;

        IF FOUND THEN
            v_out := 'saved';
            PERFORM audit_append(c.merchant_id, c.checkout_id, 'payment_method:saved',
                                 jsonb_build_object('payment_method', v_id,
                                                    'psp', p_psp,
                                                    'usage', c.save_method ->> 'usage',
                                                    'event', p_event_id));
        ELSE
            v_out := 'already';
            v_id := NULL;
        END IF;
    END IF;

    INSERT INTO psp_events (psp, event_id, state, body, headers, key_id, kind, type,
                            reference, outcome, merchant_id, checkout_id, applied_at,
                            unmatched_at)
    VALUES (p_psp, p_event_id, v_state, p_body, coalesce(p_headers, '{}'), p_key_id,
            'METHOD_SAVED', left(coalesce(p_type, ''), 100), nullif(p_reference, ''),
            v_out, c.merchant_id, c.checkout_id,
            CASE WHEN v_state = 'applied' THEN now() END,
            CASE WHEN v_state = 'unmatched' THEN now() END);

    RETURN QUERY SELECT v_out, c.merchant_id, c.checkout_id, v_state, v_id;
END
$function$;
REVOKE ALL ON FUNCTION pay_method_event_keep(p_psp text, p_event_id text, p_type text, p_reference text, p_token_sealed text, p_token_index text, p_psp_customer text, p_display jsonb, p_body bytea, p_headers jsonb, p_key_id text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_method_event_keep(p_psp text, p_event_id text, p_type text, p_reference text, p_token_sealed text, p_token_index text, p_psp_customer text, p_display jsonb, p_body bytea, p_headers jsonb, p_key_id text) TO payments_gateway;
