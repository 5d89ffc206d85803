-- A METHOD_SAVED event applied (under the event's advisory lock, taken by
-- the caller): the checkout whose nonce p_reference is, at p_psp, gets its
-- saved method when it asked for one.  p_method is what the inbox keeps
-- for it: {token_sealed (sealed by the gateway, "payment_method:<nonce>"),
-- token_index (its blind index, domain "payment_method:<psp>"),
-- psp_customer, display {brand, last4, exp_month, exp_year}}.  Outcomes:
--   saved      a new saved method (audited payment_method:saved); a save
--              without a charge (amount 0) still EXECUTING moves to
--              SUCCESS with it (audited setup:succeeded), nothing booked;
--   already    this token (or a method of this checkout) is saved;
--              either way the checkout's method_saved_at is set (it is
--              no longer swept for its method);
--   not_asked  the checkout did not ask to save its method;
--   unknown_checkout  no such checkout: state unmatched (foreign when the
--              reference is not a nonce);
--   not_kept   p_method is NULL (a row kept before the inbox kept it):
--              nothing can be saved from it.
-- pay_method_event_keep (the webhook) and pay_inbox_replay call it.
CREATE OR REPLACE FUNCTION pay_method_saved_apply(p_psp text, p_event_id text, p_reference text, p_method jsonb)
 RETURNS TABLE(outcome text, merchant_id text, checkout_id text, state text, method_id text)
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
#variable_conflict use_column
DECLARE
    c        checkouts%ROWTYPE;
    v_out    text;
    v_state  text := 'applied';
    v_id     text;
BEGIN
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
    ELSIF p_method IS NULL OR coalesce(p_method ->> 'token_sealed', '') = '' THEN
        v_out := 'not_kept';
        v_state := 'unmatched';
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
                c.save_method ->> 'customer_ref', p_psp,
                nullif(p_method ->> 'psp_customer', ''),
                p_method ->> 'token_sealed', p_method ->> 'token_index',
                c.save_method ->> 'usage', c.save_method ->> 'recurring',
                nullif(lower(p_method -> 'display' ->> 'brand'), ''),
                nullif(p_method -> 'display' ->> 'last4', ''),
                (p_method -> 'display' ->> 'exp_month')::int,
                (p_method -> 'display' ->> 'exp_year')::int,
                c.checkout_id, p_event_id)
        ON CONFLICT DO NOTHING;

        IF FOUND THEN
            v_out := 'saved';
            PERFORM audit_append(c.merchant_id, c.checkout_id, 'payment_method:saved',
                                 jsonb_build_object('payment_method', v_id,
                                                    'psp', p_psp,
                                                    'usage', c.save_method ->> 'usage',
                                                    'event', p_event_id));

            -- a save without a charge (amount 0, no orders) is done once
            -- its method is saved: SUCCESS, nothing booked (no money
            -- moved, no order to pay out); the PSP's zero-amount success
            -- may have moved it first
            IF c.amount_total = 0 AND c.status = 'EXECUTING' THEN
                UPDATE checkouts ck
                   SET status = 'SUCCESS', updated_at = now()
                 WHERE ck.merchant_id = c.merchant_id
                   AND ck.checkout_id = c.checkout_id;
                PERFORM audit_append(c.merchant_id, c.checkout_id, 'setup:succeeded',
                                     jsonb_build_object('from', 'EXECUTING',
                                                        'to', 'SUCCESS',
                                                        'payment_method', v_id,
                                                        'event', p_event_id));
            END IF;
        ELSE
            v_out := 'already';
            v_id := NULL;
        END IF;

        -- the checkout's method is recorded (this one, or the same token
        -- saved by another of its shopper's checkouts): it leaves the
        -- sweeper's checkouts_method_unalerted or checkouts_method_alerted
        -- (pay_sweeper_methods_due)
        UPDATE checkouts ck
           SET method_saved_at = now()
         WHERE ck.merchant_id = c.merchant_id
           AND ck.checkout_id = c.checkout_id
           AND ck.method_saved_at IS NULL;
    END IF;

    RETURN QUERY SELECT v_out, c.merchant_id, c.checkout_id, v_state, v_id;
END
$function$;
REVOKE ALL ON FUNCTION pay_method_saved_apply(p_psp text, p_event_id text, p_reference text, p_method jsonb) FROM PUBLIC;
