-- POST /v1/checkouts/{id}/cancel, the claim (one transaction): the
-- Idempotency-Key (op_key_take), then the checkout, locked.
--   not_found                another merchant's or no checkout, or one whose
--                            PSP is in p_other_mode (configured in the
--                            other mode than the API key's: test money never
--                            reaches a live PSP, nor the reverse): nothing
--                            stored
--   replay, reused, in_use   as op_key_take says
--   decided                  the checkout is decided already: SUCCESS is
--                            p_paid_problem (409), FAILED by a cancel 200,
--                            FAILED otherwise p_not_cancelable_problem (409),
--                            stored under the key and answered; so is an
--                            off-session charge its PSP has (409, its own
--                            detail), once no registration holds it
--   registering              the checkout is EXECUTING without a session
--                            while its registration (or a review's
--                            approval) holds its key's lease: its PSP call
--                            may be making a session this cancel would not
--                            see.  Nothing stored (this key freed); the
--                            caller answers 409 with Retry-After
--                            retry_after, the seconds left of that lease
--                            (a registration never runs past it: nginx -t
--                            holds the lease above the request's timeout)
--   new, resumed             the checkout is EXECUTING: the cancel is noted
--                            (cancel_requested_at, audited once) and the
--                            caller asks the PSP with psp, psp_token (as
--                            stored: sealed), nonce; claim_age is the key's
--                            age in seconds
-- A 200 stores {"checkout_id","status"}: its answer is the checkout as GET
-- /v1/checkouts/{id} shows it.
CREATE OR REPLACE FUNCTION pay_cancel_claim(p_merchant text, p_idem_key text, p_fingerprint text, p_lease_seconds integer, p_ttl_seconds integer, p_checkout text, p_paid_problem text, p_not_cancelable_problem text, p_other_mode text[])
 RETURNS TABLE(outcome text, lease bigint, retry_after integer, response_status integer, response_body text, psp text, psp_token text, nonce text, claim_age bigint)
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
#variable_conflict use_column
DECLARE
    c         checkouts%ROWTYPE;
    t         record;
    v_status  int;
    v_body    text;
    v_age     bigint;
    v_wait    int;
BEGIN
    PERFORM 1 FROM checkouts ck
     WHERE ck.merchant_id = p_merchant AND ck.checkout_id = p_checkout
       AND ck.psp <> ALL (coalesce(p_other_mode, '{}'));
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'not_found'::text, NULL::bigint, NULL::int, NULL::int,
                            NULL::text, NULL::text, NULL::text, NULL::text, NULL::bigint;
        RETURN;
    END IF;

    SELECT * INTO t FROM op_key_take(p_merchant, p_idem_key, p_fingerprint,
                                     p_lease_seconds, p_ttl_seconds, p_checkout) x;
    IF t.outcome NOT IN ('new', 'resumed') THEN
        RETURN QUERY SELECT t.outcome, t.lease, t.retry_after, t.response_status,
                            t.response_body, NULL::text, NULL::text, NULL::text,
                            NULL::bigint;
        RETURN;
    END IF;

    SELECT * INTO c FROM checkouts ck
     WHERE ck.merchant_id = p_merchant AND ck.checkout_id = p_checkout
       FOR UPDATE;

    IF c.status = 'SUCCESS' THEN
        v_status := 409;
        v_body := p_paid_problem;
    ELSIF c.status = 'FAILED' AND c.failure_code = 'canceled' THEN
        v_status := 200;
        v_body := jsonb_build_object('checkout_id', c.checkout_id,
                                     'status', c.status)::text;
    ELSIF c.status = 'FAILED' THEN
        v_status := 409;
        v_body := p_not_cancelable_problem;
    END IF;

    IF v_status IS NOT NULL THEN
        PERFORM op_key_done(p_merchant, p_idem_key, t.lease, v_status, v_body);
        RETURN QUERY SELECT 'decided'::text, NULL::bigint, NULL::int, v_status,
                            v_body, c.psp, NULL::text, NULL::text, NULL::bigint;
        RETURN;
    END IF;

    -- its registration at the PSP: the key that made the checkout (the
    -- checkout names it: idem_key, stored with the row; nothing indexes
    -- the keys by checkout), in progress under a live lease.  The
    -- checkout's lock orders this with pay_finish, which stores the token
    -- there.  (No live lease: no row, and no wait.)
    IF c.status = 'EXECUTING' AND c.psp_token IS NULL THEN
        SELECT GREATEST(1, ceil(date_part('epoch',
                   ik.lease_until - clock_timestamp())))::int
          INTO v_wait
          FROM idempotency_keys ik
         WHERE ik.merchant_id = p_merchant AND ik.idem_key = c.idem_key
           AND ik.checkout_id = p_checkout AND ik.idem_key <> p_idem_key
           AND ik.state = 'in_progress' AND ik.lease_until > clock_timestamp();

        IF v_wait IS NOT NULL THEN
            IF t.outcome = 'new' THEN
                DELETE FROM idempotency_keys ik
                 WHERE ik.merchant_id = p_merchant AND ik.idem_key = p_idem_key;
            ELSE
                UPDATE idempotency_keys ik SET lease_until = now()
                 WHERE ik.merchant_id = p_merchant AND ik.idem_key = p_idem_key
                   AND ik.state = 'in_progress' AND ik.lease = t.lease;
            END IF;
            RETURN QUERY SELECT 'registering'::text, NULL::bigint, v_wait, NULL::int,
                                NULL::text, c.psp, NULL::text, NULL::text, NULL::bigint;
            RETURN;
        END IF;
    END IF;

    -- an off-session charge that went to its PSP (accepted, held for a
    -- manual capture, or its answer lost) has no session to end: the PSP
    -- took the payment or is deciding it.  Ended here alone it would be
    -- FAILED while the PSP pays it (Adyen), or asked of the PSP as a
    -- session it is not (a 404, for good).  One that needs the shopper
    -- has its hosted page (psp_url) and is canceled as any session.
    IF c.status IN ('EXECUTING', 'AUTHORIZED') AND c.payment_method_id IS NOT NULL
       AND c.psp_url IS NULL THEN
        v_body := jsonb_set(p_not_cancelable_problem::jsonb, '{detail}',
            to_jsonb('the off-session charge was sent to the PSP and cannot '
                     'be canceled; void it while it is held for a manual '
                     'capture, or refund it once paid'::text))::text;
        PERFORM op_key_done(p_merchant, p_idem_key, t.lease, 409, v_body);
        RETURN QUERY SELECT 'decided'::text, NULL::bigint, NULL::int, 409,
                            v_body, c.psp, NULL::text, NULL::text, NULL::bigint;
        RETURN;
    END IF;

    IF c.cancel_requested_at IS NULL THEN
        UPDATE checkouts ck SET cancel_requested_at = now()
         WHERE ck.merchant_id = p_merchant AND ck.checkout_id = p_checkout;
        PERFORM audit_append(p_merchant, p_checkout, 'cancel:requested',
            jsonb_build_object('psp', c.psp));
    END IF;

    SELECT floor(extract(epoch FROM now() - ik.created_at))::bigint INTO v_age
      FROM idempotency_keys ik
     WHERE ik.merchant_id = p_merchant AND ik.idem_key = p_idem_key;

    RETURN QUERY SELECT t.outcome, t.lease, NULL::int, NULL::int, NULL::text,
                        c.psp, c.psp_token, c.nonce, coalesce(v_age, 0);
END
$function$;
REVOKE ALL ON FUNCTION pay_cancel_claim(p_merchant text, p_idem_key text, p_fingerprint text, p_lease_seconds integer, p_ttl_seconds integer, p_checkout text, p_paid_problem text, p_not_cancelable_problem text, p_other_mode text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_cancel_claim(p_merchant text, p_idem_key text, p_fingerprint text, p_lease_seconds integer, p_ttl_seconds integer, p_checkout text, p_paid_problem text, p_not_cancelable_problem text, p_other_mode text[]) TO payments_gateway;

