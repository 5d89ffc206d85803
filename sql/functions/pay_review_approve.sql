-- A person approved a checkout held for review: it goes back to EXECUTING
-- with the PSP request the caller rebuilt from the whole stored checkout
-- (pay_review_get), its expires_at the stored one or, when a review
-- outlasted it, a fresh one (no PSP ever saw a request under this nonce),
-- and the registration's Idempotency-Key is claimed
-- again under a new lease, so that the caller registers the PSP session
-- through the registration's own path (pay_finish stores the 201, which
-- the shop's retry with its key then replays); checkout.approved tells the
-- merchant.
--   approved  the above; psp_request and expires_at are the caller's
--   resumed   approved before, the PSP did not answer, the lease ran out:
--             taken again, with the request stored then (byte for byte:
--             the PSP may hold a session of it); claim_age is the seconds
--             since that first approval sent it, or since a later attempt
--             did when every one before it said it sent nothing (0 when
--             none can have: this attempt is the first the PSP may see);
--             the caller sends nothing once the PSP may have forgotten
--             its key.  psp_contact as pay_claim's resume writes it
--   replay    registered already: the key's stored answer
--   in_use    an approval's PSP call is under way (retry_after seconds)
--   decided   not held for review (rejected, expired, never), or the
--             shop's cancel of it is under way
--   method_unusable  an off-session charge whose saved method was
--             detached while it was held: nothing approved (the method
--             is locked FOR SHARE, as a charge's claim locks it)
--   merchant_account  an off-session charge whose method was saved under
--             another merchant account than p_psp_conf's (the PSP
--             settings p_psp_request is built with, pay_psp_conf_record),
--             as pay_claim refuses it: nothing approved, still held;
--             response_body the method's ({"merchant_account": ...})
CREATE OR REPLACE FUNCTION pay_review_approve(p_merchant text, p_checkout_id text, p_psp_request text, p_expires_at bigint, p_lease_seconds integer, p_psp_conf jsonb)
 RETURNS TABLE(outcome text, idem_key text, lease bigint, psp_request text, expires_at bigint, response_status integer, response_body text, retry_after integer, claim_age bigint)
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
#variable_conflict use_column
DECLARE
    c        checkouts%ROWTYPE;
    rk       checkout_risk%ROWTYPE;
    k        idempotency_keys%ROWTYPE;
    v_now    timestamptz := clock_timestamp();
    v_lease  bigint;
    v_key    text;
    v_method payment_methods%ROWTYPE;
    v_saved  text;
BEGIN
    IF p_psp_request IS NULL OR p_expires_at IS NULL
       OR coalesce(p_lease_seconds, 0) < 1 THEN
        RAISE EXCEPTION 'pay_review_approve: psp_request, expires_at and a lease are required'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    -- The registration's key, precisely: the one that made the checkout,
    -- stored by pay_claim in the transaction that stored the checkout (so
    -- at its created_at, the transaction's start), which the review's
    -- verdict names (review_key: nothing indexes the keys by checkout).  A
    -- cancel's key names the checkout too, and is always younger.  Then
    -- the locks in the order every function takes them (doc/MONEY.md):
    -- the key, the checkout, its risk row.
    v_key := review_key_of(p_merchant, p_checkout_id);
    SELECT * INTO k FROM idempotency_keys ik
     WHERE ik.merchant_id = p_merchant AND ik.idem_key = v_key
       AND ik.checkout_id = p_checkout_id
       FOR UPDATE;
    SELECT * INTO c FROM checkouts ck
     WHERE ck.merchant_id = p_merchant AND ck.checkout_id = p_checkout_id
       FOR UPDATE;
    SELECT * INTO rk FROM checkout_risk r
     WHERE r.merchant_id = p_merchant AND r.checkout_id = p_checkout_id
       FOR UPDATE;

    IF c.checkout_id IS NULL OR rk.verdict IS DISTINCT FROM 'review'
       OR k.idem_key IS NULL
       OR NOT (c.status = 'REVIEW' AND rk.reviewed IS NULL
               OR c.status = 'EXECUTING' AND rk.reviewed = 'approved') THEN
        RETURN QUERY SELECT 'decided'::text, NULL::text, NULL::bigint, NULL::text,
                            NULL::bigint, NULL::int, NULL::text, NULL::int, NULL::bigint;
        RETURN;
    END IF;

    IF c.status = 'EXECUTING' THEN
        IF k.state = 'done' THEN
            RETURN QUERY SELECT 'replay'::text, k.idem_key, NULL::bigint, NULL::text,
                                NULL::bigint, k.response_status, k.response_body, NULL::int,
                                NULL::bigint;
            RETURN;
        END IF;
        IF k.lease_until > v_now THEN
            RETURN QUERY SELECT 'in_use'::text, k.idem_key, NULL::bigint, NULL::text,
                                NULL::bigint, NULL::int, NULL::text,
                                GREATEST(1, ceil(date_part('epoch', k.lease_until - v_now)))::int,
                                NULL::bigint;
            RETURN;
        END IF;
    END IF;

    -- a checkout the shop asked to cancel (its cancel under way) is never
    -- sent to a PSP: the cancel ends only the session it saw
    IF c.cancel_requested_at IS NOT NULL THEN
        RETURN QUERY SELECT 'decided'::text, NULL::text, NULL::bigint, NULL::text,
                            NULL::bigint, NULL::int, NULL::text, NULL::int, NULL::bigint;
        RETURN;
    END IF;

    IF c.status = 'EXECUTING' THEN
        UPDATE idempotency_keys ik
           SET lease = ik.lease + 1,
               lease_until = v_now + p_lease_seconds * interval '1 second'
         WHERE ik.merchant_id = p_merchant AND ik.idem_key = k.idem_key
        RETURNING ik.lease INTO v_lease;
        -- as pay_claim's resume: this attempt may reach the PSP, one that
        -- never said it sent nothing may have; a 'maybe' stays
        IF c.psp_contact <> 'maybe' THEN
            UPDATE checkouts ck
               SET psp_contact = CASE ck.psp_contact WHEN 'none' THEN 'trying' ELSE 'maybe' END,
                   psp_contact_since = CASE ck.psp_contact WHEN 'none' THEN v_now
                                            ELSE ck.psp_contact_since END
             WHERE ck.merchant_id = p_merchant AND ck.checkout_id = p_checkout_id
            RETURNING * INTO c;
        END IF;
        -- the first approval sent it (reviewed_at, set in the transaction
        -- that took the key before that call), or a later attempt when
        -- every one before it said it sent nothing (psp_contact_since)
        RETURN QUERY SELECT 'resumed'::text, k.idem_key, v_lease, c.psp_request,
                            ts_epoch(c.expires_at), NULL::int, NULL::text, NULL::int,
                            GREATEST(0, floor(date_part('epoch', v_now
                                - GREATEST(rk.reviewed_at, c.psp_contact_since))))::bigint;
        RETURN;
    END IF;

    -- an off-session charge's saved method, locked as a charge's claim
    -- locks it (until this commits: a detach waits for it, or came first):
    -- one detached while the charge was held is never charged
    IF c.payment_method_id IS NOT NULL THEN
        SELECT * INTO v_method FROM payment_methods pm
         WHERE pm.merchant_id = p_merchant AND pm.method_id = c.payment_method_id
           AND pm.status = 'active'
           FOR SHARE;
        IF NOT FOUND THEN
            RETURN QUERY SELECT 'method_unusable'::text, NULL::text, NULL::bigint,
                                NULL::text, NULL::bigint, NULL::int, NULL::text,
                                NULL::int, NULL::bigint;
            RETURN;
        END IF;

        -- saved under another merchant account than the one the request
        -- is built with (as pay_claim refuses a charge): not sent
        IF p_psp_conf ? 'merchant_account' THEN
            SELECT stored_request_account(sc.psp_request) INTO v_saved
              FROM checkouts sc
             WHERE sc.merchant_id = p_merchant
               AND sc.checkout_id = v_method.checkout_id;
            IF v_saved <> p_psp_conf ->> 'merchant_account' THEN
                RETURN QUERY SELECT 'merchant_account'::text, NULL::text,
                                    NULL::bigint, NULL::text, NULL::bigint,
                                    NULL::int,
                                    jsonb_build_object('merchant_account',
                                                       v_saved)::text,
                                    NULL::int, NULL::bigint;
                RETURN;
            END IF;
        END IF;
    END IF;

    UPDATE idempotency_keys ik
       SET state = 'in_progress', lease = ik.lease + 1,
           lease_until = v_now + p_lease_seconds * interval '1 second',
           response_status = NULL, response_body = NULL
     WHERE ik.merchant_id = p_merchant AND ik.idem_key = k.idem_key
    RETURNING ik.lease INTO v_lease;

    UPDATE checkouts ck
       SET status = 'EXECUTING', psp_request = p_psp_request,
           expires_at = to_timestamp(p_expires_at), updated_at = now()
     WHERE ck.merchant_id = p_merchant AND ck.checkout_id = p_checkout_id;

    UPDATE checkout_risk r
       SET reviewed = 'approved', reviewed_at = now()
     WHERE r.merchant_id = p_merchant AND r.checkout_id = p_checkout_id;

    PERFORM audit_append(p_merchant, p_checkout_id, 'risk:approved',
        jsonb_build_object('from', 'REVIEW', 'to', 'EXECUTING',
                           'expires_at', p_expires_at));

    -- the merchant hears of it (the outbox, in this transaction); the
    -- shop's Idempotency-Key replays the registration with its pay_url
    PERFORM notify_enqueue(
        p_merchant, 'checkout.approved', p_checkout_id, p_checkout_id,
        jsonb_build_object(
            'checkout_id', p_checkout_id,
            'status', 'EXECUTING',
            'amount_total_minor', c.amount_total,
            'amount_total', money_decimal(c.amount_total, c.currency),
            'currency', c.currency,
            'metadata', c.metadata,
            'payment_orders', coalesce((
                SELECT jsonb_agg(jsonb_build_object(
                           'payment_order_id', o.payment_order_id,
                           'status', o.status,
                           'amount_minor', o.amount,
                           'amount', money_decimal(o.amount, o.currency),
                           'currency', o.currency) ORDER BY o.line_no)
                  FROM payment_orders o
                 WHERE o.merchant_id = p_merchant
                   AND o.checkout_id = p_checkout_id), '[]'::jsonb)));

    RETURN QUERY SELECT 'approved'::text, k.idem_key, v_lease, p_psp_request,
                        p_expires_at, NULL::int, NULL::text, NULL::int, 0::bigint;
END
$function$;
REVOKE ALL ON FUNCTION pay_review_approve(p_merchant text, p_checkout_id text, p_psp_request text, p_expires_at bigint, p_lease_seconds integer, p_psp_conf jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_review_approve(p_merchant text, p_checkout_id text, p_psp_request text, p_expires_at bigint, p_lease_seconds integer, p_psp_conf jsonb) TO payments_gateway;

-- The signature without the PSP's settings, which the previous release's
-- module calls during an upgrade: no account compared.
CREATE OR REPLACE FUNCTION pay_review_approve(p_merchant text, p_checkout_id text, p_psp_request text, p_expires_at bigint, p_lease_seconds integer)
 RETURNS TABLE(outcome text, idem_key text, lease bigint, psp_request text, expires_at bigint, response_status integer, response_body text, retry_after integer, claim_age bigint)
 LANGUAGE sql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
    SELECT outcome, idem_key, lease, psp_request, expires_at, response_status, response_body, retry_after, claim_age FROM pay_review_approve(p_merchant, p_checkout_id, p_psp_request, p_expires_at, p_lease_seconds, NULL::jsonb);
$function$;
REVOKE ALL ON FUNCTION pay_review_approve(p_merchant text, p_checkout_id text, p_psp_request text, p_expires_at bigint, p_lease_seconds integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_review_approve(p_merchant text, p_checkout_id text, p_psp_request text, p_expires_at bigint, p_lease_seconds integer) TO payments_gateway;
